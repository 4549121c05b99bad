//! The formats with a decoder of their own beyond JPEG, PNG and WebP: ms per 100x100 thumbnail, one core, the same
//! photos converted in the same run (HEIC and AVIF by heif-enc, JPEG XL by cjxl, a 2-second 1080p H.264 clip by
//! FFmpeg), against the JPEG they came from; and a drawn SVG and a one-page PDF, which have no photo to compare.

use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat};
use thumbq_common::{
    fixtures::{cjxl, encode, ffmpeg_video, heif_enc, pdf},
    task::{Fit, OutputFormat, ResizeArgs},
};
use thumbq_worker::pipeline::{Limits, make_thumbnail};

use super::RUNS;

/// Turns a JPEG photo into another format.
type Convert<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

/// The median ms of making a 100x100 cover JPEG of `bytes`.
fn median_ms(bytes: &[u8]) -> f64 {
    let args = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg);
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(make_thumbnail(bytes, &args, Limits::pixels(u64::MAX)).expect("thumbnail"));
            started.elapsed()
        })
        .collect();
    runs.sort();
    runs[RUNS / 2].as_secs_f64() * 1000.0
}

/// Prints the table for `photos` (JPEGs).
pub fn other_formats(photos: &[Vec<u8>]) {
    println!("\nOther inputs, 100x100 cover JPEG, ms per image (median of {RUNS}), {} photos:", photos.len());
    println!("{:<8} {:>8} {:>10} {:>9} {:>9}", "format", "avg MP", "ms", "JPEG ms", "x JPEG");
    let png = |photo: &[u8]| encode(&image::load_from_memory(photo).expect("a photo"), ImageFormat::Png);
    let clip = |photo: &[u8]| {
        let folder = tempfile::tempdir().expect("a folder");
        let still = folder.path().join("still.jpg");
        std::fs::write(&still, photo).expect("written");
        let still = still.display().to_string();
        let fit = "scale=1920:1080:force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2";
        ffmpeg_video(
            "mp4",
            &["-loop", "1", "-i", &still, "-t", "2", "-r", "25", "-vf", fit, "-c:v", "libx264", "-pix_fmt", "yuv420p"],
        )
    };
    let conversions: [(&str, &Convert<'_>); 5] = [
        ("heic", &|p| heif_enc(&png(p), &["-q", "80"])),
        // As phones write them: with a thumbnail item of 320 pixels, which a 100x100 thumbnail is made from.
        ("heic-t", &|p| heif_enc(&png(p), &["-q", "80", "-t", "320"])),
        ("avif", &|p| heif_enc(&png(p), &["-A", "-q", "80"])),
        ("jxl", &|p| cjxl(p, &["-j", "0", "-d", "1"])),
        ("mp4", &clip),
    ];
    for (name, convert) in conversions {
        let (mut ms, mut jpeg_ms, mut megapixels) = (0.0, 0.0, 0.0);
        for photo in photos {
            let converted = convert(photo);
            let decoded: DynamicImage = image::load_from_memory(photo).expect("a photo");
            megapixels += f64::from(decoded.width()) * f64::from(decoded.height()) / 1e6;
            ms += median_ms(&converted);
            jpeg_ms += median_ms(photo);
        }
        let n = photos.len() as f64;
        println!("{name:<8} {:>8.1} {:>10.1} {:>9.1} {:>9.2}", megapixels / n, ms / n, jpeg_ms / n, ms / jpeg_ms);
    }
    let svg = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 400 300'><defs><linearGradient id='g'>\
        <stop offset='0' stop-color='red'/><stop offset='1' stop-color='blue'/></linearGradient></defs>\
        <rect width='400' height='300' fill='url(#g)'/><circle cx='200' cy='150' r='90' fill='#fff8'/></svg>";
    println!("{:<8} {:>8} {:>10.1}", "svg", "-", median_ms(svg.as_bytes()));
    let page = pdf(595, 842, "0 0 1 rg 50 50 495 742 re f 1 0 0 RG 8 w 50 50 m 545 792 l S", "");
    println!("{:<8} {:>8} {:>10.1}", "pdf", "-", median_ms(&page));
    println!("heic-t: with a 320-pixel thumbnail item, as phones write; mp4: the clip's poster frame (ffprobe and");
    println!("ffmpeg as processes); pdf: pdfinfo and pdftoppm likewise.");
}
