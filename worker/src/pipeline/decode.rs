//! Decoding a source image to 8-bit pixels, no larger than the thumbnail needs.
//!
//! JPEG is decoded by libjpeg-turbo at a reduced scale chosen in the DCT (1/8, 1/4, 1/2 or 1): entropy decoding
//! cannot be skipped, but the inverse DCT, colour conversion and every later step run on up to 64 times fewer
//! pixels, and the decoded image stays small (a 50-megapixel JPEG decodes to under a megapixel for a 100×100
//! thumbnail). WebP is decoded by libwebp, which scales while decoding, to the size needed. Other formats are
//! decoded whole by `image`, within memory limits.

use std::io::Cursor;

use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageReader, Limits, RgbImage, codecs::jpeg::JpegDecoder,
    metadata::Orientation,
};
use thumbq_common::{image_probe, task::SourceFormat};
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

use super::PipelineError;

/// The EXIF orientation recorded in the image's header (JPEG, PNG, WebP, TIFF), read without decoding pixels.
pub fn orientation(bytes: &[u8], format: SourceFormat) -> Orientation {
    let read = || -> image::ImageResult<Option<Orientation>> {
        let mut decoder: Box<dyn ImageDecoder> = match format {
            SourceFormat::Jpeg => Box::new(JpegDecoder::new(Cursor::new(bytes))?),
            other => {
                Box::new(ImageReader::with_format(Cursor::new(bytes), image_probe::image_format(other)).into_decoder()?)
            }
        };
        decoder.orientation().map(Some)
    };
    read().ok().flatten().unwrap_or(Orientation::NoTransforms)
}

/// Decodes `bytes` (already probed as `format`) to 8-bit Luma, LumaA, RGB or RGBA pixels. `reduction` is how many
/// times smaller than full size the decoded image may be (≥ 1): JPEG uses the largest DCT scale within it.
pub fn decode(
    bytes: &[u8],
    format: SourceFormat,
    max_pixels: u64,
    reduction: f64,
) -> Result<DynamicImage, PipelineError> {
    if format == SourceFormat::Jpeg {
        // libjpeg-turbo, like zune-jpeg, fills a truncated JPEG with grey after a warning; a cut-off upload must
        // not pass as a thumbnail.
        if !jpeg_is_complete(bytes) {
            return Err(PipelineError::Decode("the JPEG is truncated: its end-of-image marker is missing".into()));
        }
        if let Some(image) = decode_jpeg_scaled(bytes, reduction)? {
            return Ok(image);
        }
    }
    if format == SourceFormat::Webp {
        // Animated WebPs are not for libwebp's simple decoder: `image` takes their first frame.
        if let Ok(image) = super::webp::decode_scaled(bytes, reduction) {
            return Ok(image);
        }
    }
    decode_whole(bytes, format, max_pixels)
}

/// The DCT scale for a permitted reduction: 1/8, 1/4, 1/2 or 1.
pub fn jpeg_scale(reduction: f64) -> ScalingFactor {
    match reduction {
        r if r >= 8.0 => ScalingFactor::ONE_EIGHTH,
        r if r >= 4.0 => ScalingFactor::ONE_QUARTER,
        r if r >= 2.0 => ScalingFactor::ONE_HALF,
        _ => ScalingFactor::ONE,
    }
}

/// Decodes a JPEG with libjpeg-turbo at reduced scale; `None` for colour spaces it leaves to `image` (CMYK, YCCK).
fn decode_jpeg_scaled(bytes: &[u8], reduction: f64) -> Result<Option<DynamicImage>, PipelineError> {
    let error = |e: turbojpeg::Error| PipelineError::Decode(e.to_string());
    let mut decompressor = Decompressor::new().map_err(error)?;
    let header = decompressor.read_header(bytes).map_err(error)?;
    let format = match header.colorspace {
        Colorspace::Gray => PixelFormat::GRAY,
        Colorspace::YCbCr | Colorspace::RGB => PixelFormat::RGB,
        _ => return Ok(None),
    };
    let scale = if header.is_lossless { ScalingFactor::ONE } else { jpeg_scale(reduction) };
    decompressor.set_scaling_factor(scale).map_err(error)?;
    let scaled = header.scaled(scale);
    let channels = format.size();
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; channels * scaled.width * scaled.height],
        width: scaled.width,
        pitch: channels * scaled.width,
        height: scaled.height,
        format,
    };
    decompressor.decompress(bytes, image.as_deref_mut()).map_err(error)?;
    let (width, height) = (u32::try_from(scaled.width), u32::try_from(scaled.height));
    let (Ok(width), Ok(height)) = (width, height) else { return Err(PipelineError::Decode("image too large".into())) };
    let built = match format {
        PixelFormat::GRAY => GrayImage::from_raw(width, height, image.pixels).map(DynamicImage::ImageLuma8),
        _ => RgbImage::from_raw(width, height, image.pixels).map(DynamicImage::ImageRgb8),
    };
    built.map(Some).ok_or_else(|| PipelineError::Decode("decoded buffer has the wrong size".into()))
}

/// Decodes any accepted format whole with `image`.
fn decode_whole(bytes: &[u8], format: SourceFormat, max_pixels: u64) -> Result<DynamicImage, PipelineError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_probe::image_format(format));
    let mut limits = Limits::default();
    // Room for the widest pixel type (RGBA, 16 bits a channel) plus the decoders' working buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
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
/// Walks a JPEG's markers, skipping segments and entropy-coded scans, and says whether it reaches the end-of-image
/// marker. Bytes after it (some cameras append data) are allowed.
fn jpeg_is_complete(data: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        while data.get(i) == Some(&0xFF) {
            i += 1; // fill bytes before a marker
        }
        let Some(&marker) = data.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue, // markers without a length
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (data.get(i), data.get(i + 1)) else {
            return false;
        };
        i += usize::from(u16::from_be_bytes([hi, lo]));
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart marker.
            // It is most of the file: jump from 0xFF to 0xFF (memchr's SIMD search, not a byte loop).
            loop {
                let Some(offset) = data.get(i..).and_then(|rest| memchr::memchr(0xFF, rest)) else {
                    return false;
                };
                i += offset;
                match data.get(i + 1) {
                    None => return false,
                    Some(&next) if next != 0 && !(0xD0..=0xD7).contains(&next) => break,
                    Some(_) => i += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat;
    use thumbq_common::fixtures::sample_image;

    #[test]
    fn a_jpeg_is_complete_only_up_to_its_end_marker() {
        let jpeg = sample_image(ImageFormat::Jpeg, 64, 48);
        assert!(jpeg_is_complete(&jpeg));
        let mut with_trailer = jpeg.clone();
        with_trailer.extend(b"appended by a camera");
        assert!(jpeg_is_complete(&with_trailer));
        for cut in [3, 20, jpeg.len() / 2, jpeg.len() - 2] {
            assert!(!jpeg_is_complete(&jpeg[..cut]), "cut at {cut} of {}", jpeg.len());
        }
    }
}
