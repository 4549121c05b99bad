//! Step 3, decode: one module per source format, each behind [`Codec`], chosen in one place ([`for_format`]).
//!
//! A trait rather than a `match` on the format in each operation: a codec answers three questions (what its header
//! says, how much memory its decode takes, the decode itself), and the next formats (HEIC, AVIF, JPEG XL, SVG, PDF,
//! video frames) each bring their own library for all three. With a trait, adding one is a module implementing it
//! plus one line in [`for_format`]; the header has a default (the `image` crate's reader) for codecs it can read.

mod child;
mod generic;
mod heif;
pub mod jpeg;
mod jxl;
pub mod pdf;
mod svg;
mod tiff;
pub mod video;
pub mod webp;

use image::{DynamicImage, metadata::Orientation};
use thumbq_common::{image_probe::Probe, task::SourceFormat};

use super::PipelineError;

/// What the image's header says about how to show its pixels.
pub struct Header {
    /// The EXIF orientation.
    pub orientation: Orientation,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

impl Header {
    /// No turn and no profile: what a codec gives whose library already turns the picture and draws in sRGB.
    pub fn upright_srgb() -> Self {
        Self { orientation: Orientation::NoTransforms, icc: None }
    }
}

/// The size a codec that draws at any size (SVG, PDF, video frames) draws `probe` at, `reduction` times smaller.
pub fn drawn_size(probe: &Probe, reduction: f64) -> (u32, u32) {
    let side = |length: u32| ((f64::from(length) / reduction.max(1.0)).round() as u32).max(1);
    (side(probe.width), side(probe.height))
}

/// How a decode is asked for.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// How many times smaller than full size the decoded image may be (≥ 1): codecs that can shrink while they
    /// decode use the largest reduction within it; the others decode at full size.
    pub reduction: f64,
    /// The cap on a C decoder's intermediate buffers, in MiB (0: no cap).
    pub memory_mib: u32,
    /// The embedded profile, for codecs that must apply it while decoding (CMYK inks cannot be told from RGB after).
    pub icc: Option<&'a [u8]>,
}

/// One source format's decoder.
pub trait Codec: Sync {
    /// The EXIF orientation and ICC profile, read without decoding pixels and within the header allocation limit;
    /// none of either when the header cannot say.
    fn header(&self, bytes: &[u8], format: SourceFormat) -> Header {
        generic::header(bytes, format)
    }

    /// The probe made exact by the codec's own library, for formats whose size the probe can only guess (a PDF's
    /// first page); the probe itself for the others.
    fn refine(&self, _bytes: &[u8], probe: Probe) -> Result<Probe, PipelineError> {
        Ok(probe)
    }

    /// The bytes the decode's own buffers hold at their peak, decoding `bytes` (probed as `probe`) at up to
    /// `reduction` times smaller than full size: the admission estimate's share for this codec.
    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64;

    /// Whether its pixels may carry alpha (the resampler then premultiplies a copy).
    fn may_have_alpha(&self) -> bool {
        true
    }

    /// Decodes `bytes` (already probed as `probe`) to 8-bit Luma, LumaA, RGB or RGBA pixels, as `request` asks.
    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError>;
}

/// The codec that decodes `format`.
pub fn for_format(format: SourceFormat) -> &'static dyn Codec {
    match format {
        SourceFormat::Jpeg => &jpeg::Jpeg,
        SourceFormat::Webp => &webp::Webp,
        SourceFormat::Tiff => &tiff::Tiff,
        SourceFormat::Heic | SourceFormat::Avif => &heif::Heif,
        SourceFormat::Jxl => &jxl::Jxl,
        SourceFormat::Svg => &svg::Svg,
        SourceFormat::Pdf => &pdf::Pdf,
        SourceFormat::Mp4 | SourceFormat::Webm => &video::Video,
        SourceFormat::Png
        | SourceFormat::Gif
        | SourceFormat::Bmp
        | SourceFormat::Ico
        | SourceFormat::Pnm
        | SourceFormat::Qoi => &generic::Generic,
    }
}

/// Turns premultiplied RGBA pixels (libtiff's, tiny-skia's) into straight ones, as the pipeline keeps them.
fn unpremultiply(rgba: &mut [u8]) {
    for pixel in rgba.chunks_exact_mut(4) {
        let alpha = u16::from(pixel[3]);
        if alpha != 0 && alpha != 255 {
            for channel in &mut pixel[..3] {
                *channel = ((u16::from(*channel) * 255 + alpha / 2) / alpha).min(255) as u8;
            }
        }
    }
}
