//! HEIC and AVIF through Debian's libheif, with its HEVC (libde265) and AV1 (dav1d) decoders: as phones write them,
//! grids of tiles, `irot`/`imir`/`clap` transforms, alpha planes, 10 and 12-bit samples (brought to 8 bits). An
//! animated AVIF gives the still image it names as primary, its first frame.
//!
//! A thumbnail item the file carries (phones write one of about 320 pixels) is decoded instead of the image when it
//! is large enough for every output: HEIF's shrink-on-load.
//!
//! Orientation comes from the file's own transforms, which libheif applies; an EXIF orientation inside a HEIF is
//! ignored, as browsers and Apple's own viewers do (the format says the transforms are what counts). libheif 1.15
//! decodes a grid whole (tile by tile into one picture, the tiles' API came in 1.19), so the admission estimate
//! counts the whole picture.

mod libheif;

use image::{DynamicImage, RgbImage, RgbaImage, metadata::Orientation};
use thumbq_common::{image_probe::Probe, task::SourceFormat};

use super::{Codec, Header, PipelineError, Request};
use libheif::Primary;

/// Decodes HEIF and AVIF with libheif, at full size.
pub struct Heif;

/// Bytes a pixel costs at the decode's peak, at worst, without alpha, 8-bit: libheif's decoded planes (three of 8
/// bits at 4:4:4), its interleaved 8-bit RGB conversion, and the copy that becomes the image, with room to spare.
/// Measured: 5.8 for an 8-bit 4:2:0 12-MP HEIC (a worker peaking at 104 MiB, 33 of them idle; `tests/memory.rs`).
const PEAK_BYTES_PER_PIXEL: u64 = 12;
/// Deeper samples: 16-bit planes and libheif's 16-bit interleaved conversion before the 8-bit one.
const DEEP_EXTRA_BYTES_PER_PIXEL: u64 = 3 + 6;
/// Alpha: its plane, RGBA instead of RGB twice, and the resampler's premultiplied copy.
const ALPHA_EXTRA_BYTES_PER_PIXEL: u64 = 2 + 1 + 1 + 4;

/// How much larger than the shown picture a coded one may be, on each side.
const CODING_PADDING: u32 = 1024;

impl Codec for Heif {
    fn header(&self, bytes: &[u8], _format: SourceFormat) -> Header {
        let icc = Primary::open(bytes, u32::MAX).ok().and_then(|primary| primary.icc());
        Header { orientation: Orientation::NoTransforms, icc }
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        // The picture the decode will use (a thumbnail item that covers the outputs, as phones write, or the image)
        // and whether it has alpha, from the file's boxes: no pixel is decoded.
        let worst = PEAK_BYTES_PER_PIXEL + DEEP_EXTRA_BYTES_PER_PIXEL + ALPHA_EXTRA_BYTES_PER_PIXEL;
        let full = || u64::from(probe.width) * u64::from(probe.height) * worst;
        let Ok(primary) = Primary::open(bytes, probe.width.max(probe.height).saturating_add(CODING_PADDING)) else {
            return full();
        };
        let thumbnails = primary.thumbnails();
        let covering = thumbnails.iter().find(|t| covers(t.size(), (probe.width, probe.height), reduction));
        let picture = covering.unwrap_or(primary.picture());
        let (width, height) = picture.size();
        let per_pixel = PEAK_BYTES_PER_PIXEL
            + if picture.is_deep() { DEEP_EXTRA_BYTES_PER_PIXEL } else { 0 }
            + if picture.has_alpha() { ALPHA_EXTRA_BYTES_PER_PIXEL } else { 0 };
        u64::from(width) * u64::from(height) * per_pixel
    }

    fn may_have_alpha(&self) -> bool {
        // Counted by `decode_peak`, which knows from the header whether the picture has alpha.
        false
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        // libheif refuses a coded picture with a side at or past its limit; pictures are coded padded to the codec's
        // blocks (64 pixels in x265) and grids to whole tiles (512 in phones). The probe bounded the shown size.
        let max_side = probe.width.max(probe.height).saturating_add(CODING_PADDING);
        let primary = Primary::open(bytes, max_side).map_err(PipelineError::Decode)?;
        // The probe read the same boxes; a disagreement would dodge the pixel limit or misplan the resize.
        let (width, height) = primary.picture().size();
        if (width, height) != (probe.width, probe.height) {
            return Err(PipelineError::Decode(format!(
                "the image's size is unclear: {width}x{height} or {}x{}",
                probe.width, probe.height
            )));
        }
        // Shrink-on-load, HEIF's way: the smallest thumbnail item at least as large as the thumbnail needs, of the
        // same shape, decodes in a fraction of the time of a 12-MP grid.
        let thumbnails = primary.thumbnails();
        let covering = thumbnails.iter().find(|t| covers(t.size(), (width, height), request.reduction));
        let picture = covering.unwrap_or(primary.picture());
        let alpha = picture.has_alpha();
        let (decoded_width, decoded_height, pixels) = picture.decode(alpha).map_err(PipelineError::Decode)?;
        if (decoded_width, decoded_height) != picture.size() {
            return Err(PipelineError::Decode(format!(
                "libheif made a {decoded_width}x{decoded_height} picture of a {}x{} image",
                picture.size().0,
                picture.size().1
            )));
        }
        let image = if alpha {
            RgbaImage::from_raw(decoded_width, decoded_height, pixels).map(DynamicImage::ImageRgba8)
        } else {
            RgbImage::from_raw(decoded_width, decoded_height, pixels).map(DynamicImage::ImageRgb8)
        };
        image.ok_or_else(|| PipelineError::Decode("libheif's picture does not match its size".into()))
    }
}

/// Whether a thumbnail item of `size` can stand for an image of `full` size shrunk up to `reduction` times: no
/// smaller than that on either side, and the same shape within two pixels: encoders round a thumbnail's sides to
/// even numbers for 4:2:0 chroma (heif-enc makes a 1920x1280 photo's 320x212, not 320x213), a stretch of under 1 %
/// that no one sees at a thumbnail's size.
fn covers(size: (u32, u32), full: (u32, u32), reduction: f64) -> bool {
    let (width, height) = (f64::from(size.0), f64::from(size.1));
    let (full_width, full_height) = (f64::from(full.0), f64::from(full.1));
    let same_shape = (width * full_height / full_width - height).abs() <= 2.0;
    same_shape && width * reduction >= full_width && height * reduction >= full_height
}

#[cfg(test)]
mod tests;
