//! The formats the `image` crate decodes whole (PNG, GIF, BMP, TIFF), and the fallback of the other codecs for what
//! their own library leaves to it (CMYK JPEGs without a profile, animated WebPs), within memory limits.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, codecs::jpeg::JpegDecoder, metadata::Orientation};
use thumbq_common::{
    image_probe::{self, Probe},
    task::SourceFormat,
};

use super::{Codec, Header, PipelineError, Request};

/// Decodes with the `image` crate, at full size.
pub struct Generic;

impl Codec for Generic {
    fn decode_peak(&self, bytes: &[u8], probe: &Probe, _reduction: f64) -> u64 {
        whole_peak(bytes, probe)
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, _request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        decode_whole(bytes, probe)
    }
}

/// The EXIF orientation and the ICC profile recorded in the image's header (JPEG, PNG, WebP, TIFF), read by the
/// `image` crate's decoder without decoding pixels and within the header allocation limit.
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

/// Decodes any accepted format whole with `image`, allocating no more than its pixels need.
pub fn decode_whole(bytes: &[u8], probe: &Probe) -> Result<DynamicImage, PipelineError> {
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

/// A whole-image decode by `image`: its native pixel buffer, plus the 8-bit copy when it is wider.
pub fn whole_peak(bytes: &[u8], probe: &Probe) -> u64 {
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    let native = image_probe::limited_reader(bytes, probe.format, image_probe::HEADER_ALLOC_LIMIT)
        .into_decoder()
        .map(|decoder| decoder.total_bytes())
        .unwrap_or(pixels * 8);
    if native > pixels * 4 { native + pixels * 4 } else { native }
}
