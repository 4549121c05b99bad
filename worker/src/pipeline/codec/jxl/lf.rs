//! A lossy JPEG XL image at an eighth of its size, made from its LF (DC) coefficients alone: what JPEG's 1/8 DCT
//! scaling is to a JPEG, for a thumbnail at least eight times smaller than its photo.
//!
//! Written here because jxl-oxide has no reduced-size render: its progressive render of a frame whose high
//! frequencies are missing still rebuilds and filters every pixel at full size. Every lossy (VarDCT) frame carries
//! its own 1/8 image, one LF coefficient per 8x8 block; dequantised, with its chroma taken from luma and turned from
//! XYB into the image's colours, it is the photo box-filtered by 8, but for what the full decode does after: the
//! adaptive smoothing of flat areas, and the blur (gaborish) the encoder sharpened for, which the LF image keeps at
//! sharp edges (about one level in 255 from the source's 8x8 means, see the tests). The parsing, dequantisation and colour transform are jxl-oxide's own crates'; the formulas are theirs,
//! as `jxl-render` applies them (`copy_lf_dequant`, `chroma_from_luma_lf`).
//!
//! Only the plain case takes this road: one full-canvas VarDCT frame in XYB, with its LF in its own groups, no extra
//! channel (alpha), no orientation to apply, no upsampling, standard dynamic range and colours named by enum, not an
//! ICC profile. Anything else is `None`, and the caller renders the frame whole.

use jxl_frame::{data::TocGroupKind, header::Encoding, header::FrameType};
use jxl_oxide::{
    ColorEncodingWithProfile, EnumColourEncoding, JxlImage, NullCms, RenderingIntent, image::color::ColourEncoding,
};

/// The image's first frame at an eighth of its size, with its channel count (1: grey, 3: colour), or `None` when it
/// is not the plain case (or its LF cannot be read: the full render then says why).
pub fn eighth(image: &JxlImage) -> Option<(u32, u32, usize, Vec<u8>)> {
    let header = image.image_header();
    let meta = &header.metadata;
    let ColourEncoding::Enum(colours) = &meta.colour_encoding else { return None };
    let frame = image.frame(0)?;
    let h = frame.header();
    let plain = h.encoding == Encoding::VarDct
        && h.frame_type == FrameType::RegularFrame
        && h.is_last
        && h.lf_level == 0
        && !h.flags.use_lf_frame()
        && !h.do_ycbcr
        && h.upsampling == 1
        && !frame.toc().is_single_entry()
        && (h.x0, h.y0, h.width, h.height) == (0, 0, image.width(), image.height())
        && meta.xyb_encoded
        && meta.ec_info.is_empty()
        && meta.orientation == 1
        && image.hdr_type().is_none();
    // Every LF section must be there whole (a file cut short is for the full render to refuse).
    let whole = |kind| {
        frame
            .toc()
            .iter_bitstream_order()
            .any(|g| g.kind == kind && frame.data(kind).is_some_and(|d| d.len() == g.size as usize))
    };
    if !plain || !whole(TocGroupKind::LfGlobal) || !(0..h.num_lf_groups()).all(|i| whole(TocGroupKind::LfGroup(i))) {
        return None;
    }
    let lf_global = frame.try_parse_lf_global::<i32>()?.ok()?;
    let vardct = lf_global.vardct.as_ref()?;
    let (quantizer, dequant) = (&vardct.quantizer, &lf_global.lf_dequant);
    let (width, height) = (h.width.div_ceil(8) as usize, h.height.div_ceil(8) as usize);
    let mut planes = [vec![0f32; width * height], vec![0f32; width * height], vec![0f32; width * height]];
    let (group, per_row) = (h.group_dim() as usize, h.lf_groups_per_row() as usize);
    let scale_inv = f64::from(quantizer.global_scale) * f64::from(quantizer.quant_lf);
    for index in 0..h.num_lf_groups() {
        let lf_group = frame.try_parse_lf_group::<i32>(Some(vardct), lf_global.gmodular.ma_config(), None, index)?;
        let lf_group = lf_group.ok()?;
        let coefficients = lf_group.lf_coeff.as_ref()?;
        let channels = coefficients.lf_quant.image()?.image_channels();
        let (left, top) = ((index as usize % per_row) * group, (index as usize / per_row) * group);
        let precision = f64::from(1u32 << (9 - u32::from(coefficients.extra_precision.min(3))));
        // Stored as Y, X, B; laid out here as X, Y, B.
        for (plane, stored, multiplier) in [(0, 1, dequant.m_x_lf), (1, 0, dequant.m_y_lf), (2, 2, dequant.m_b_lf)] {
            let scale = (f64::from(multiplier) * precision / scale_inv) as f32;
            let grid = channels.get(stored)?;
            let columns = grid.width().min(width.saturating_sub(left));
            for y in 0..grid.height().min(height.saturating_sub(top)) {
                let row = &grid.buf()[y * grid.width()..][..columns];
                let out = &mut planes[plane][(top + y) * width + left..][..columns];
                for (out, &q) in out.iter_mut().zip(row) {
                    *out = q as f32 * scale;
                }
            }
        }
    }
    // Chroma from luma, with the frame's LF factors.
    let correlation = &vardct.lf_chan_corr;
    let factor = |f: u32| (f as i32 - 128) as f32 / correlation.colour_factor as f32;
    let (kx, kb) = (
        correlation.base_correlation_x + factor(correlation.x_factor_lf),
        correlation.base_correlation_b + factor(correlation.b_factor_lf),
    );
    let [x, y, b] = &mut planes;
    for ((x, b), y) in x.iter_mut().zip(b.iter_mut()).zip(y.iter()) {
        *x += kx * y;
        *b += kb * y;
    }
    let xyb = ColorEncodingWithProfile::new(EnumColourEncoding::xyb(RenderingIntent::Perceptual));
    let target = ColorEncodingWithProfile::new(colours.clone());
    let transform = jxl_color::ColorTransform::builder()
        .build(&xyb, &target, &meta.opsin_inverse_matrix, &meta.tone_mapping, &NullCms)
        .ok()?;
    let [x, y, b] = &mut planes;
    let channels = transform.run(&mut [&mut x[..], &mut y[..], &mut b[..]]).ok()?;
    if !matches!(channels, 1 | 3) {
        return None;
    }
    let mut pixels = Vec::with_capacity(width * height * channels);
    for i in 0..width * height {
        pixels.extend(planes[..channels].iter().map(|plane| (plane[i].clamp(0.0, 1.0) * 255.0).round() as u8));
    }
    Some((width as u32, height as u32, channels, pixels))
}
