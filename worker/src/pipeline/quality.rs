//! Output quality against a reference: the same crop of the full-resolution decode, resampled with Lanczos3.
//! Shrink-on-load must never silently cost quality; `make bench` reports the same figure on the whole corpus.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage};
use thumbq_common::task::ResizeArgs;

use super::{finish::encode::over_white, plan::geometry};

/// The reference thumbnail: a full decode by `image`, the same geometry, Lanczos3 over every source pixel (alpha
/// premultiplied), laid over white.
pub fn reference(bytes: &[u8], args: &ResizeArgs) -> RgbImage {
    let full = DynamicImage::ImageRgba8(image::load_from_memory(bytes).expect("reference decodes").into_rgba8());
    let plan = geometry::plan(full.width(), full.height(), args.width, args.height, args.fit);
    let mut out = DynamicImage::new_rgba8(plan.width, plan.height);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).crop(
        plan.left,
        plan.top,
        plan.crop_width,
        plan.crop_height,
    );
    Resizer::new().resize(&full, &mut out, &options).expect("reference resizes");
    over_white(&out)
}

/// A thumbnail as compared: decoded, laid over white (colours under full transparency are undefined).
pub fn flattened(encoded: &[u8]) -> RgbImage {
    over_white(&decode(encoded))
}

/// Decodes a thumbnail of any output format: AVIF with libavif's `avifdec` (the reference decoder, which the test
/// tools install; the worker itself only encodes AVIF), the others with `image`.
pub fn decode(encoded: &[u8]) -> DynamicImage {
    if image::guess_format(encoded).ok() != Some(image::ImageFormat::Avif) {
        return image::load_from_memory(encoded).expect("thumbnail decodes");
    }
    let unique = format!("thumbq-avif-{}-{}", std::process::id(), fastrand::u64(..));
    let (input, output) =
        (std::env::temp_dir().join(format!("{unique}.avif")), std::env::temp_dir().join(format!("{unique}.png")));
    std::fs::write(&input, encoded).expect("a temporary file");
    let status = std::process::Command::new("avifdec")
        .arg(&input)
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("avifdec runs (deploy/native/test-tools.sh installs it)");
    let decoded = std::fs::read(&output);
    let _ = (std::fs::remove_file(&input), std::fs::remove_file(&output));
    assert!(status.success(), "avifdec decodes the AVIF thumbnail");
    image::load_from_memory(&decoded.expect("avifdec wrote a PNG")).expect("the PNG decodes")
}

/// Peak signal-to-noise ratio of `a` against `b` in dB (8-bit RGB; infinite when identical).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "PSNR needs images of one size");
    let squared: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum();
    let mse = squared / a.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Limits, make_thumbnail};
    use thumbq_common::task::{Fit, OutputFormat};

    /// The committed real photo (2560×1600 JPEG).
    const PHOTO: &[u8] = include_bytes!("../../../assets/example.jpg");

    #[test]
    fn shrink_on_load_keeps_psnr_above_35_db_in_every_fit_mode() {
        for fit in [Fit::Cover, Fit::Contain, Fit::Fill] {
            for (width, height) in [(100, 100), (320, 200), (64, 160)] {
                let args = ResizeArgs::new(width, height, fit, OutputFormat::Png);
                let thumbnail = make_thumbnail(PHOTO, &args, Limits::pixels(1 << 30)).unwrap();
                let ours = flattened(&thumbnail.bytes);
                let db = psnr(&ours, &reference(PHOTO, &args));
                assert!(db >= 35.0, "{fit:?} {width}x{height}: {db:.1} dB");
            }
        }
    }

    #[test]
    fn scaled_webp_decoding_keeps_psnr_above_35_db_with_and_without_alpha() {
        let photo =
            image::load_from_memory(PHOTO).unwrap().resize_exact(1280, 800, image::imageops::FilterType::Triangle);
        let mut translucent = photo.to_rgba8();
        translucent.pixels_mut().enumerate().for_each(|(i, p)| p.0[3] = if i % 1280 < 640 { 255 } else { 96 });
        for source in [photo, DynamicImage::ImageRgba8(translucent)] {
            let webp = thumbq_common::fixtures::encode(&source, image::ImageFormat::WebP);
            for fit in [Fit::Cover, Fit::Contain, Fit::Fill] {
                let args = ResizeArgs::new(100, 100, fit, OutputFormat::Png);
                let ours = flattened(&make_thumbnail(&webp, &args, Limits::pixels(1 << 30)).unwrap().bytes);
                let db = psnr(&ours, &reference(&webp, &args));
                assert!(db >= 35.0, "{fit:?}, alpha {}: {db:.1} dB", source.color().has_alpha());
            }
        }
    }

    #[test]
    fn jpeg_output_stays_close_to_the_reference_in_colour_and_in_grey() {
        let grey = thumbq_common::fixtures::encode(
            &DynamicImage::ImageLuma8(image::load_from_memory(PHOTO).unwrap().to_luma8()),
            image::ImageFormat::Png,
        );
        for source in [PHOTO, grey.as_slice()] {
            let args = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg);
            let thumbnail = make_thumbnail(source, &args, Limits::pixels(1 << 30)).unwrap();
            assert_eq!(image::guess_format(&thumbnail.bytes).unwrap(), image::ImageFormat::Jpeg);
            let db = psnr(&flattened(&thumbnail.bytes), &reference(source, &args));
            // Quality 85 on 100x100 pixels: lossy (34.8 dB, with image's encoder as with libjpeg-turbo), but far
            // from a wrong picture (< 30 dB) or from 4:2:0 chroma (31 dB).
            assert!(db >= 34.0, "{db:.1} dB");
        }
    }

    #[test]
    fn quality_trades_size_for_fidelity_in_jpeg_and_lossy_webp_and_lossless_webp_is_exact() {
        let make = |args: ResizeArgs| make_thumbnail(PHOTO, &args, Limits::pixels(1 << 30)).unwrap().bytes;
        let base = ResizeArgs::new(200, 200, Fit::Cover, OutputFormat::Webp);
        let png = flattened(&make(ResizeArgs { format: OutputFormat::Png, ..base }));
        let mut rows = Vec::new();
        for (format, lossless) in
            [(OutputFormat::Jpeg, false), (OutputFormat::Webp, false), (OutputFormat::Avif, false)]
        {
            let (low, high) = [30, 95].map(|q| make(ResizeArgs { format, lossless, quality: Some(q), ..base })).into();
            let (db_low, db_high) = (psnr(&flattened(&low), &png), psnr(&flattened(&high), &png));
            assert!(low.len() * 2 < high.len(), "{format:?}: q30 {} B vs q95 {} B", low.len(), high.len());
            assert!(db_low + 3.0 < db_high && db_low >= 28.0, "{format:?}: q30 {db_low:.1} dB, q95 {db_high:.1} dB");
            rows.push((format, low.len(), high.len()));
        }
        let lossy = make(base);
        assert_eq!(image::guess_format(&lossy).unwrap(), image::ImageFormat::WebP);
        let db = psnr(&flattened(&lossy), &png);
        assert!(db >= 32.0, "default lossy WebP (q80): {db:.1} dB");
        let lossless = make(ResizeArgs { lossless: true, ..base });
        assert!(psnr(&flattened(&lossless), &png).is_infinite(), "lossless WebP is the PNG's pixels");
        assert!(
            lossy.len() * 3 < lossless.len(),
            "lossy {} B vs lossless {} B ({rows:?})",
            lossy.len(),
            lossless.len()
        );
    }

    #[test]
    fn default_avif_is_as_faithful_as_default_jpeg_and_smaller() {
        let base = ResizeArgs::new(200, 200, Fit::Cover, OutputFormat::Avif);
        let make = |args: ResizeArgs| make_thumbnail(PHOTO, &args, Limits::pixels(1 << 30)).unwrap().bytes;
        let png = flattened(&make(ResizeArgs { format: OutputFormat::Png, ..base }));
        let (avif, jpeg) = (make(base), make(ResizeArgs { format: OutputFormat::Jpeg, ..base }));
        assert_eq!(image::guess_format(&avif).unwrap(), image::ImageFormat::Avif);
        let (db_avif, db_jpeg) = (psnr(&flattened(&avif), &png), psnr(&flattened(&jpeg), &png));
        assert!(db_avif >= db_jpeg - 1.5, "AVIF q80 {db_avif:.1} dB vs JPEG q85 {db_jpeg:.1} dB");
        assert!(avif.len() < jpeg.len(), "AVIF {} B vs JPEG {} B", avif.len(), jpeg.len());
    }

    #[test]
    fn psnr_tells_a_wrong_thumbnail_apart() {
        let args = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Png);
        let wrong = ResizeArgs { fit: Fit::Fill, ..args };
        let ours = flattened(&make_thumbnail(PHOTO, &wrong, Limits::pixels(1 << 30)).unwrap().bytes);
        assert!(psnr(&ours, &reference(PHOTO, &args)) < 30.0, "a stretched image does not pass for a cropped one");
    }
}
