//! Decoding a source image to 8-bit pixels, no larger than the thumbnail needs.
//!
//! JPEG is decoded by libjpeg-turbo at a reduced scale chosen in the DCT (1/8, 1/4, 1/2 or 1): entropy decoding
//! cannot be skipped, but the inverse DCT, colour conversion and every later step run on up to 64 times fewer
//! pixels, and the decoded image stays small (a 50-megapixel JPEG decodes to under a megapixel for a 100×100
//! thumbnail). WebP is decoded by libwebp, which scales while decoding, to the size needed. Other formats are
//! decoded whole by `image`, within memory limits.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, codecs::jpeg::JpegDecoder, metadata::Orientation};
use thumbq_common::{
    image_probe::{self, Probe},
    task::SourceFormat,
};
use turbojpeg::ScalingFactor;

use super::{
    PipelineError,
    colour::CmykToSrgb,
    jpeg::{self, DecodeLimits},
    jpeg_dc, jpeg_layout,
};

/// What the image's header says about how to show its pixels.
pub struct Header {
    /// The EXIF orientation.
    pub orientation: Orientation,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

/// The EXIF orientation and the ICC profile recorded in the image's header (JPEG, PNG, WebP, TIFF), read without
/// decoding pixels and within the header allocation limit.
pub fn header(bytes: &[u8], format: SourceFormat) -> Header {
    let read = || -> image::ImageResult<Header> {
        let mut decoder: Box<dyn ImageDecoder> = match format {
            // A JPEG's EXIF lives in one APP1 segment (64 KB at most), its profile in APP2 segments.
            SourceFormat::Jpeg => Box::new(JpegDecoder::new(Cursor::new(image_probe::header_bytes(bytes, format)))?),
            other => {
                Box::new(image_probe::limited_reader(bytes, other, image_probe::HEADER_ALLOC_LIMIT).into_decoder()?)
            }
        };
        let icc = decoder.icc_profile().ok().flatten();
        Ok(Header { orientation: decoder.orientation().unwrap_or(Orientation::NoTransforms), icc })
    };
    read().unwrap_or(Header { orientation: Orientation::NoTransforms, icc: None })
}

/// Decodes `bytes` (already probed as `format`) to 8-bit Luma, LumaA, RGB or RGBA pixels. `reduction` is how many
/// times smaller than full size the decoded image may be (≥ 1): JPEG uses the largest DCT scale within it.
/// `memory_mib` caps libjpeg-turbo's intermediate buffers (0: no cap). `icc`, the embedded profile: a CMYK JPEG's is
/// applied while decoding (its inks cannot be told from RGB afterwards).
pub fn decode(
    bytes: &[u8],
    probe: &Probe,
    reduction: f64,
    memory_mib: u32,
    icc: Option<&[u8]>,
) -> Result<DynamicImage, PipelineError> {
    let format = probe.format;
    if format == SourceFormat::Jpeg {
        // libjpeg-turbo, like zune-jpeg, fills a truncated JPEG with grey after a warning; a cut-off upload must
        // not pass as a thumbnail.
        let Some(layout) = jpeg_layout::read(bytes) else {
            return Err(PipelineError::Decode("the JPEG is truncated: its end-of-image marker is missing".into()));
        };
        let one_eighth = jpeg_scale(reduction) == ScalingFactor::ONE_EIGHTH;
        // At 1/8 scale a progressive JPEG needs its DC scans alone, and no coefficient buffer.
        if one_eighth
            && layout.progressive()
            && let Some(image) = jpeg_dc::decode(bytes)
        {
            return Ok(image);
        }
        // Otherwise libjpeg-turbo, and at 1/8 scale most of a progressive JPEG's AC scans can go undecoded.
        let lighter = one_eighth.then(|| layout.for_one_eighth(bytes));
        let limits = DecodeLimits { max_scans: MAX_SCANS, max_memory_mib: memory_mib };
        let source = lighter.flatten();
        let to_srgb = CmykToSrgb::new(icc);
        let cmyk = to_srgb.as_ref().map(|c| (c, layout.adobe()));
        let data = source.as_deref().unwrap_or(bytes);
        if let Some(image) = jpeg::decode_scaled(data, jpeg_scale(reduction), limits, cmyk)? {
            return Ok(image);
        }
    }
    // Animated WebPs are not for libwebp's simple decoder: `image` takes their first frame. Any other WebP that
    // libwebp cannot decode is corrupt: handing it to `image` would decode it whole, past its memory estimate (the
    // fuzzer found a 14-megapixel one that took 75 MB that way).
    if format == SourceFormat::Webp && !super::webp::is_animated(bytes) {
        return super::webp::decode_scaled(bytes, reduction);
    }
    decode_whole(bytes, probe)
}

/// The most scans a progressive JPEG may have. Each scan is a pass over every block of its components, so a small
/// upload made of thousands of scans would keep a worker busy for minutes; real files have about 10 (libjpeg's
/// default progression) to a few dozen.
const MAX_SCANS: u32 = 300;

/// The DCT scale for a permitted reduction: 1/8, 1/4, 1/2 or 1.
pub fn jpeg_scale(reduction: f64) -> ScalingFactor {
    match reduction {
        r if r >= 8.0 => ScalingFactor::ONE_EIGHTH,
        r if r >= 4.0 => ScalingFactor::ONE_QUARTER,
        r if r >= 2.0 => ScalingFactor::ONE_HALF,
        _ => ScalingFactor::ONE,
    }
}

/// Decodes any accepted format whole with `image`, allocating no more than its pixels need.
fn decode_whole(bytes: &[u8], probe: &Probe) -> Result<DynamicImage, PipelineError> {
    // The widest pixel type (RGBA, 16 bits a channel) plus room for the decoders' working buffers and metadata.
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    let max_alloc = pixels.saturating_mul(8).saturating_add(2 * image_probe::HEADER_ALLOC_LIMIT);
    let reader = image_probe::limited_reader(bytes, probe.format, max_alloc);
    let image = reader.decode().map_err(|e| PipelineError::Decode(e.to_string()))?;
    Ok(to_eight_bit(image))
}

fn to_eight_bit(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.into_rgba8()),
        other => DynamicImage::ImageRgb8(other.into_rgb8()),
    }
}
#[cfg(test)]
mod tests {
    use turbojpeg::Subsamp;

    use super::*;
    use crate::pipeline::test_images::progressive_jpeg;

    /// libjpeg-turbo's decode of the whole file, with no cap on its memory.
    fn whole_file_decode(bytes: &[u8], reduction: f64) -> DynamicImage {
        let limits = DecodeLimits { max_scans: MAX_SCANS, max_memory_mib: 0 };
        jpeg::decode_scaled(bytes, jpeg_scale(reduction), limits, None).expect("decodes").expect("YCbCr")
    }

    fn jpeg_probe(bytes: &[u8]) -> Probe {
        image_probe::probe(bytes, u64::MAX).expect("a readable JPEG header")
    }

    #[test]
    fn a_progressive_jpeg_at_one_eighth_decodes_to_the_same_pixels_without_its_ac_scans() {
        // 1703x1301 at 4:4:4 has 34,793 blocks a component: more than one end-of-band run can cover.
        for (subsamp, width, height) in
            [(Subsamp::None, 1703, 1301), (Subsamp::Sub2x2, 803, 611), (Subsamp::Sub2x1, 803, 611)]
        {
            let jpeg = progressive_jpeg(width, height, subsamp);
            let lighter =
                jpeg_layout::read(&jpeg).and_then(|layout| layout.for_one_eighth(&jpeg)).expect("AC scans to drop");
            assert!(lighter.len() * 3 < jpeg.len(), "{subsamp:?}: {} of {} bytes kept", lighter.len(), jpeg.len());

            // The path a progressive JPEG takes when the DC-only decoder declines it (`jpeg_dc`).
            let fast = whole_file_decode(&lighter, 8.0);
            let whole_file = whole_file_decode(&jpeg, 8.0);
            let expected = (width.div_ceil(8) as u32, height.div_ceil(8) as u32);
            assert_eq!((fast.width(), fast.height()), expected, "{subsamp:?}");
            assert!(fast.as_bytes() == whole_file.as_bytes(), "{subsamp:?}: pixels differ");
        }
    }

    #[test]
    fn a_jpeg_with_too_many_scans_is_refused_and_one_with_a_few_more_is_not() {
        let jpeg = progressive_jpeg(64, 48, Subsamp::Sub2x2);
        let padded = |extra| jpeg_layout::with_empty_scans(&jpeg, extra).expect("a complete JPEG");
        let image = decode(&padded(20), &jpeg_probe(&padded(20)), 1.0, 0, None).expect("30 scans decode");
        assert_eq!((image.width(), image.height()), (64, 48));
        let err =
            decode(&padded(MAX_SCANS as usize), &jpeg_probe(&padded(MAX_SCANS as usize)), 1.0, 0, None).unwrap_err();
        assert!(matches!(&err, PipelineError::Decode(message) if message.contains("scan")), "{err}");
    }

    #[test]
    fn a_progressive_jpeg_with_a_broken_frame_header_is_a_decode_error() {
        let mut jpeg = progressive_jpeg(320, 240, Subsamp::Sub2x2);
        let frame = jpeg.windows(2).position(|w| w == [0xFF, 0xC2]).expect("an SOF2 marker");
        jpeg[frame + 11] = 0; // the first component's sampling factors
        // The probe (zune-jpeg) refuses this header too; the decoder must not rely on that.
        let probe = Probe { format: SourceFormat::Jpeg, width: 320, height: 240 };
        let err = decode(&jpeg, &probe, 8.0, 0, None).unwrap_err();
        assert!(matches!(err, PipelineError::Decode(_)), "{err}");
    }

    #[test]
    fn a_progressive_jpeg_above_one_eighth_keeps_its_ac_scans() {
        let jpeg = progressive_jpeg(320, 240, Subsamp::Sub2x2);
        let lighter =
            jpeg_layout::read(&jpeg).and_then(|layout| layout.for_one_eighth(&jpeg)).expect("AC scans to drop");
        let image = decode(&jpeg, &jpeg_probe(&jpeg), 4.0, 0, None).expect("decodes");
        let whole_file = whole_file_decode(&jpeg, 4.0);
        let blurred = whole_file_decode(&lighter, 4.0);
        assert_eq!((image.width(), image.height()), (80, 60));
        assert!(image.as_bytes() == whole_file.as_bytes(), "decoded from every scan");
        assert!(image.as_bytes() != blurred.as_bytes(), "at 1/4 the AC coefficients count");
    }

    #[test]
    fn libjpeg_turbo_refuses_a_progressive_jpeg_whose_coefficients_exceed_its_memory_cap() {
        // 2000×1500 at 4:4:4: 18 MB of coefficients, whatever the output scale.
        let jpeg = progressive_jpeg(2000, 1500, Subsamp::None);
        let err = decode(&jpeg, &jpeg_probe(&jpeg), 4.0, 8, None).unwrap_err();
        assert!(matches!(&err, PipelineError::Decode(message) if message.contains("Memory limit")), "{err}");
        let image = decode(&jpeg, &jpeg_probe(&jpeg), 4.0, 24, None).expect("decodes within 24 MiB");
        assert_eq!((image.width(), image.height()), (500, 375));
    }
}
