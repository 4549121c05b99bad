//! JPEG XL through jxl-oxide (pure Rust), the first frame: lossy (VarDCT) or lossless (Modular), bare codestream or
//! container, alpha, grey, any bit depth (brought to 8 bits), its orientation applied by the renderer.
//!
//! No thread pool: a task decodes on its own blocking thread like every other codec, so the worker's concurrency
//! setting stays the number of cores a burst of uploads takes. jxl-oxide counts its buffers against an allocation
//! tracker, which every open here is given: without one it reserves whatever a frame's table of contents declares
//! before the bytes arrive (the fuzzer's 21-byte file reserved 1 GB). A header read may take the file's size plus
//! the header limit; a decode its admission estimate, or the worker's decoder cap when lower.
//!
//! jxl-oxide renders at full size only. A thumbnail much smaller than a lossy photo is made from the frame's 1/8
//! image instead ([`lf`], from [`LF_MIN_REDUCTION`]), as JPEG's shrink-on-load does; the admission estimate still counts the full
//! render's float buffers, which any other image takes.

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage, metadata::Orientation};
use jxl_oxide::{AllocTracker, InitializeResult, JxlImage, JxlThreadPool, PixelFormat};
use thumbq_common::{
    image_probe::{HEADER_ALLOC_LIMIT, Probe},
    task::SourceFormat,
};

use super::{Codec, Header, PipelineError, Request};

/// Decodes JPEG XL with jxl-oxide, at full size.
pub struct Jxl;

/// Bytes a channel of a pixel costs at the decode's peak: 32-bit float samples, three times (the frame's buffers,
/// the rendered image and a reference copy), and its 8-bit copy that becomes the image.
const PEAK_BYTES_PER_CHANNEL: u64 = 4 * 3 + 1;
/// The reduction from which a lossy image is made from its 1/8 (LF) image. The plan keeps twice the output's
/// pixels along each side for the resampling filter to work with (a reduction of 4 leaves the 1/8 image at least the
/// output's size); the LF image is already an area average, an eighth of the photo with nothing aliased, so the
/// filter's margin is not needed from it. (At 8, a 100x100 thumbnail of a 1920x1200 photo, a reduction of 6, took
/// the full render: 52 ms against libvips' 56 in the pipeline bench.)
const LF_MIN_REDUCTION: f64 = 4.0;
/// CICP code points of sRGB (BT.709 primaries, the sRGB transfer): pixels rendered in them need no conversion.
const SRGB_PRIMARIES: u8 = 1;
const SRGB_TRANSFER: u8 = 13;

/// The image with its header parsed, its frames read from `bytes` when `whole`, allocating at most `limit` bytes
/// for what jxl-oxide tracks.
fn open(bytes: &[u8], limit: u64, whole: bool) -> Result<JxlImage, String> {
    let tracker = AllocTracker::with_limit(usize::try_from(limit).unwrap_or(usize::MAX));
    let builder = JxlImage::builder().pool(JxlThreadPool::none()).alloc_tracker(tracker);
    if whole {
        return builder.read(bytes).map_err(|e| e.to_string());
    }
    let mut uninit = builder.build_uninit();
    uninit.feed_bytes(bytes).map_err(|e| e.to_string())?;
    match uninit.try_init().map_err(|e| e.to_string())? {
        InitializeResult::Initialized(image) => Ok(image),
        InitializeResult::NeedMoreData(_) => Err("the JPEG XL header is cut short".into()),
    }
}

/// What a header read may allocate: the file's bytes (jxl-oxide buffers them) and the usual header limit.
fn header_limit(bytes: &[u8]) -> u64 {
    bytes.len() as u64 + HEADER_ALLOC_LIMIT
}

impl Codec for Jxl {
    fn header(&self, bytes: &[u8], _format: SourceFormat) -> Header {
        // Rendered pixels are in the image's own colour space: an ICC profile describes it unless it is sRGB.
        let icc = open(bytes, header_limit(bytes), false).ok().and_then(|image| match image.rendered_cicp() {
            Some([primaries, transfer, ..]) if (primaries, transfer) == (SRGB_PRIMARIES, SRGB_TRANSFER) => None,
            _ => Some(image.rendered_icc()),
        });
        Header { orientation: Orientation::NoTransforms, icc }
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, _reduction: f64) -> u64 {
        // Every channel is decoded whole, and a header may declare many extra channels (depth, spot colours,
        // thermal…) beside the three of colour; an unreadable header is refused by the decode itself.
        let extra = open(bytes, header_limit(bytes), false)
            .map_or(1, |image| image.image_header().metadata.ec_info.len() as u64);
        let samples = u64::from(probe.width) * u64::from(probe.height) * (3 + extra);
        samples * PEAK_BYTES_PER_CHANNEL + bytes.len() as u64
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let mut limit = self.decode_peak(bytes, probe, 1.0);
        if request.memory_mib > 0 {
            limit = limit.min(u64::from(request.memory_mib) << 20);
        }
        let image = open(bytes, limit, true).map_err(PipelineError::Decode)?;
        // The probe read the same header; a disagreement would dodge the pixel limit or misplan the resize.
        if (image.width(), image.height()) != (probe.width, probe.height) {
            return Err(PipelineError::Decode(format!(
                "the image's size is unclear: {}x{} or {}x{}",
                image.width(),
                image.height(),
                probe.width,
                probe.height
            )));
        }
        if matches!(image.pixel_format(), PixelFormat::Cmyk | PixelFormat::Cmyka) {
            return Err(PipelineError::Decode("CMYK JPEG XL images are not supported".into()));
        }
        if request.reduction >= LF_MIN_REDUCTION
            && let Some((width, height, channels, pixels)) = lf::eighth(&image)
        {
            let image = match channels {
                1 => GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
                _ => RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
            };
            return image.ok_or_else(|| PipelineError::Decode("the JPEG XL 1/8 image has the wrong size".into()));
        }
        let render = image.render_frame(0).map_err(|e| PipelineError::Decode(e.to_string()))?;
        let mut stream = render.stream();
        let (width, height, channels) = (stream.width(), stream.height(), stream.channels());
        let mut pixels = vec![0u8; width as usize * height as usize * channels as usize];
        stream.write_to_buffer(&mut pixels);
        let image = match channels {
            1 => GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
            2 => GrayAlphaImage::from_raw(width, height, pixels).map(DynamicImage::ImageLumaA8),
            3 => RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
            4 => RgbaImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgba8),
            _ => None,
        };
        image.ok_or_else(|| PipelineError::Decode(format!("a JPEG XL image with {channels} channels")))
    }
}

mod lf;
#[cfg(test)]
mod tests;
