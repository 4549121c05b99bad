//! The formats the `image` crate decodes whole (PNG, GIF, BMP, ICO, PNM, QOI), and the fallback of the other codecs for what their
//! own library leaves to it (CMYK JPEGs without a profile, animated WebPs, floating-point TIFFs), within memory
//! limits.

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
    if probe.format == SourceFormat::Gif && bytes.get(10).is_some_and(|flags| flags & 0x80 == 0) {
        return gif_without_global_palette(bytes, max_alloc);
    }
    let reader = image_probe::limited_reader(bytes, probe.format, max_alloc);
    let image = reader.decode().map_err(|e| PipelineError::Decode(e.to_string()))?;
    Ok(to_eight_bit(image))
}

/// The first frame of a GIF that has no global colour table, which the `image` crate refuses when the frame has no
/// table of its own either. GIF's specification leaves the colours to the decoder then; Pillow and browsers use a
/// grey ramp, and so does this: a copy of the file gets one as its global table (a frame's own table still wins).
/// A copy costs the file's size once, for a rare file, where decoding by hand would duplicate the `image` crate's
/// GIF reader.
fn gif_without_global_palette(bytes: &[u8], max_alloc: u64) -> Result<DynamicImage, PipelineError> {
    const SCREEN_DESCRIPTOR_END: usize = 13;
    let Some(header) = bytes.get(..SCREEN_DESCRIPTOR_END) else {
        return Err(PipelineError::Decode("the GIF is cut short".into()));
    };
    let mut with_table = Vec::with_capacity(bytes.len() + 768);
    with_table.extend_from_slice(header);
    // The global colour table flag, and a table of 2^(7 + 1) = 256 entries.
    with_table[10] |= 0x87;
    with_table.extend((0..=255u8).flat_map(|v| [v, v, v]));
    with_table.extend_from_slice(&bytes[SCREEN_DESCRIPTOR_END..]);
    let reader = image_probe::limited_reader(&with_table, SourceFormat::Gif, max_alloc);
    Ok(to_eight_bit(reader.decode().map_err(|e| PipelineError::Decode(e.to_string()))?))
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
