//! Encoding the resampled thumbnail.

use std::io::Cursor;

use image::{
    DynamicImage, ImageEncoder, Rgb, RgbImage,
    codecs::{avif::AvifEncoder, gif::GifEncoder, png::PngEncoder, webp::WebPEncoder},
};
use thumbq_common::task::{OutputFormat, ResizeArgs};
use turbojpeg::{PixelFormat, Subsamp};

use super::webp;
use crate::pipeline::PipelineError;

/// rav1e's speed preset, 1 (slowest, smallest) to 10.
pub const AVIF_SPEED: u8 = 8;

/// Encodes `image` as `args` ask: their format, at their quality (lossy formats), lossless WebP on request. JPEG
/// has no alpha: transparent pixels are laid over white, as browsers show them.
pub fn encode(image: DynamicImage, args: &ResizeArgs) -> Result<Vec<u8>, PipelineError> {
    let format = args.format;
    let mut out = Cursor::new(Vec::new());
    let image = match format {
        OutputFormat::Jpeg if image.color().has_alpha() => DynamicImage::ImageRgb8(over_white(&image)),
        OutputFormat::Jpeg | OutputFormat::Png => image,
        // GIF is written from RGBA: its one transparent palette entry stands for the fully transparent pixels.
        OutputFormat::Gif => DynamicImage::ImageRgba8(image.into_rgba8()),
        // The WebP and AVIF encoders take RGB and RGBA only.
        OutputFormat::Webp | OutputFormat::Avif if image.color().has_alpha() => {
            DynamicImage::ImageRgba8(image.into_rgba8())
        }
        OutputFormat::Webp | OutputFormat::Avif => DynamicImage::ImageRgb8(image.into_rgb8()),
    };
    let (width, height, color) = (image.width(), image.height(), image.color().into());
    let result = match format {
        OutputFormat::Png => PngEncoder::new(&mut out).write_image(image.as_bytes(), width, height, color),
        OutputFormat::Jpeg => return jpeg(&image, args.quality()),
        OutputFormat::Webp if !args.lossless => return webp::encode_lossy(&image, args.quality()),
        OutputFormat::Webp => WebPEncoder::new_lossless(&mut out).write_image(image.as_bytes(), width, height, color),
        // rav1e, one thread (the worker runs tasks side by side), at a speed that keeps a 1280-pixel rendition
        // under a second (see `make bench`).
        OutputFormat::Avif => AvifEncoder::new_with_speed_quality(&mut out, AVIF_SPEED, args.quality())
            .with_num_threads(Some(1))
            .write_image(image.as_bytes(), width, height, color),
        // NeuQuant at speed 10 of 1..30, as for animated GIF (`animation.rs`).
        OutputFormat::Gif => GifEncoder::new_with_speed(&mut out, 10).encode(image.as_bytes(), width, height, color),
    };
    result.map_err(|e| PipelineError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

/// JPEG by libjpeg-turbo (already linked for decoding; 4-6x faster than `image`'s encoder at 100x100), no chroma
/// subsampling: at thumbnail sizes 4:2:0 visibly blurs colour edges (31 dB against 35 dB without).
fn jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let rgb;
    let (pixels, format, subsamp) = match image {
        DynamicImage::ImageLuma8(gray) => (gray.as_raw(), PixelFormat::GRAY, Subsamp::Gray),
        DynamicImage::ImageRgb8(color) => (color.as_raw(), PixelFormat::RGB, Subsamp::None),
        other => {
            rgb = other.to_rgb8();
            (rgb.as_raw(), PixelFormat::RGB, Subsamp::None)
        }
    };
    let (width, height) = (image.width() as usize, image.height() as usize);
    let view = turbojpeg::Image { pixels: pixels.as_slice(), width, pitch: width * format.size(), height, format };
    let jpeg =
        turbojpeg::compress(view, i32::from(quality), subsamp).map_err(|e| PipelineError::Encode(e.to_string()))?;
    Ok(jpeg.to_vec())
}

/// `image` laid over a white background, as a browser shows it.
pub(crate) fn over_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        Rgb([blend(r), blend(g), blend(b)])
    })
}
