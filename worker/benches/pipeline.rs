//! `make bench`, part 1: the pipeline alone, one core, per format, next to the naive `image` path and to libvips'
//! `vipsthumbnail` on the same files in the same run, as ratios. Also the output's PSNR against a full-resolution
//! reference, the other input formats against JPEG (`pipeline/formats.rs`), and the peak memory of making a
//! thumbnail of a 50-megapixel JPEG.
//!
//! Corpus: `bench/corpus/{jpeg,png,webp}` (made by `bench/corpus.sh`), or `THUMBQ_BENCH_CORPUS`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

#[path = "pipeline/formats.rs"]
mod formats;

use image::imageops::FilterType;
use thumbq_common::task::{Fit, OutputFormat, ResizeArgs};
use thumbq_worker::pipeline::{Limits, make_thumbnail, pdf_renderer, quality};

/// Timed runs per file of the thumbq pipeline (the median is kept).
const RUNS: usize = 5;

fn main() {
    // The pipeline runs in this binary, whose `render-pdf` is not the worker's: the renderer is the worker itself.
    pdf_renderer::use_program(env!("CARGO_BIN_EXE_thumbq-worker").into());
    if let Some(path) = std::env::args().nth(1).filter(|a| Path::new(a).is_file()) {
        return rss_probe(Path::new(&path));
    }
    let corpus = std::env::var("THUMBQ_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/corpus"));
    println!("Pipeline, one core, 100x100 cover thumbnail in the source's format; ms per image (mean over files).");
    println!(
        "{:<6} {:>5} {:>7} {:>9} {:>9} {:>9} {:>12} {:>12} {:>9}",
        "format", "files", "avg MP", "thumbq", "naive", "vips", "naive/thumbq", "thumbq/vips", "min PSNR"
    );
    let (progressive, baseline): (Vec<PathBuf>, Vec<PathBuf>) =
        list(&corpus.join("jpeg")).into_iter().partition(|f| is_progressive(&std::fs::read(f).unwrap_or_default()));
    let groups = [
        ("jpeg", baseline, OutputFormat::Jpeg, "jpg"),
        ("jpeg-p", progressive, OutputFormat::Jpeg, "jpg"),
        ("png", list(&corpus.join("png")), OutputFormat::Png, "png"),
        ("webp", list(&corpus.join("webp")), OutputFormat::Webp, "webp"),
    ];
    for (format, files, output, vips_ext) in groups {
        if files.is_empty() {
            println!("{format:<6} no files in {} (run bench/corpus.sh)", corpus.display());
            continue;
        }
        let args = ResizeArgs::new(100, 100, Fit::Cover, output);
        let (mut ours, mut naive, mut megapixels, mut min_psnr) = (Duration::ZERO, Duration::ZERO, 0.0, f64::INFINITY);
        for file in &files {
            let bytes = std::fs::read(file).expect("corpus file");
            let mut runs: Vec<Duration> = (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    std::hint::black_box(make_thumbnail(&bytes, &args, Limits::pixels(u64::MAX)).expect("thumbnail"));
                    started.elapsed()
                })
                .collect();
            runs.sort();
            ours += runs[RUNS / 2];

            let started = Instant::now();
            let full = image::load_from_memory(&bytes).expect("naive decode");
            std::hint::black_box(full.resize_exact(100, 100, FilterType::Lanczos3));
            naive += started.elapsed();
            megapixels += f64::from(full.width()) * f64::from(full.height()) / 1e6;

            let png = ResizeArgs { format: OutputFormat::Png, ..args };
            let thumbnail =
                quality::flattened(&make_thumbnail(&bytes, &png, Limits::pixels(u64::MAX)).expect("thumbnail").bytes);
            min_psnr = min_psnr.min(quality::psnr(&thumbnail, &quality::reference(&bytes, &png)));
        }
        let vips = vipsthumbnail(&files, vips_ext);
        let n = files.len() as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0 / n;
        let vips_ms = vips.map(ms);
        println!(
            "{format:<6} {:>5} {:>7.1} {:>9.1} {:>9.1} {:>9} {:>12.1} {:>12} {:>9.1}",
            files.len(),
            megapixels / n,
            ms(ours),
            ms(naive),
            vips_ms.map_or("n/a".into(), |v| format!("{v:.1}")),
            ms(naive) / ms(ours),
            vips_ms.map_or("n/a".into(), |v| format!("{:.2}", ms(ours) / v)),
            min_psnr,
        );
    }
    println!("jpeg: baseline JPEGs; jpeg-p: progressive JPEGs (every decoder pays about 4x for those).");
    let photos: Vec<Vec<u8>> = list(&corpus.join("jpeg"))
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter(|b| !is_progressive(b))
        .collect();
    if !photos.is_empty() {
        formats_at_equal_psnr(&photos[..photos.len().min(4)]);
        what_options_cost(&photos);
        formats::other_formats(&photos[..photos.len().min(3)]);
    }
    memory_of_a_50_megapixel_jpeg();
}

/// The PSNR every output format is brought to, against the lossless thumbnail: codec loss alone.
const TARGET_DB: f64 = 38.0;

/// JPEG, WebP and AVIF at the lowest quality that reaches [`TARGET_DB`] on average over `photos`, at 100x100 and
/// 1280x1280: bytes and encode time per thumbnail.
fn formats_at_equal_psnr(photos: &[Vec<u8>]) {
    println!(
        "\nOutput formats at equal PSNR ({TARGET_DB} dB against the lossless thumbnail), {} photos, encode only, one core:",
        photos.len()
    );
    println!(
        "{:<10} {:<5} {:>8} {:>9} {:>10} {:>9} {:>10}",
        "size", "format", "quality", "PSNR", "bytes", "encode ms", "bytes/JPEG"
    );
    for side in [100, 1280] {
        let fit = if side > 100 { Fit::Contain } else { Fit::Cover };
        let lossless: Vec<image::DynamicImage> = photos
            .iter()
            .map(|photo| {
                let args = ResizeArgs::new(side, side, fit, OutputFormat::Png);
                let png = make_thumbnail(photo, &args, Limits::pixels(u64::MAX)).expect("thumbnail");
                image::load_from_memory(&png.bytes).expect("PNG decodes")
            })
            .collect();
        let measure = |format: OutputFormat, quality: u8| {
            let args = ResizeArgs { quality: Some(quality), ..ResizeArgs::new(side, side, fit, format) };
            let (mut bytes, mut db, mut took) = (0usize, 0.0, Duration::ZERO);
            for image in &lossless {
                let started = Instant::now();
                let encoded = thumbq_worker::pipeline::encode(image.clone(), &args).expect("encodes");
                took += started.elapsed();
                bytes += encoded.len();
                db += quality::psnr(&quality::flattened(&encoded), &image.to_rgb8());
            }
            let n = lossless.len() as f64;
            (bytes as f64 / n, db / n, took.as_secs_f64() * 1000.0 / n)
        };
        let mut jpeg_bytes = f64::NAN;
        for format in [OutputFormat::Jpeg, OutputFormat::Webp, OutputFormat::Avif] {
            // The lowest quality reaching the target: PSNR rises with quality, so bisect.
            let (mut low, mut high) = (1u8, 100u8);
            while low < high {
                let middle = low + (high - low) / 2;
                if measure(format, middle).1 >= TARGET_DB { high = middle } else { low = middle + 1 }
            }
            let (bytes, db, ms) = measure(format, low);
            if format == OutputFormat::Jpeg {
                jpeg_bytes = bytes;
            }
            println!(
                "{:<10} {:<5} {low:>8} {db:>9.2} {bytes:>10.0} {ms:>9.2} {:>10.2}",
                format!("{side}x{side}"),
                format.name(),
                bytes / jpeg_bytes
            );
        }
    }
    println!(
        "AVIF by rav1e at speed {} (one thread); WebP by libwebp; JPEG by libjpeg-turbo (4:4:4).",
        thumbq_worker::pipeline::AVIF_SPEED
    );
}

/// The added cost per image of `focus=auto`, of renditions and of an ICC profile, against a plain 100x100 cover
/// JPEG of the same files in the same run.
fn what_options_cost(photos: &[Vec<u8>]) {
    let time = |photo: &[u8], outputs: &[ResizeArgs]| {
        let mut runs: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let made = thumbq_worker::pipeline::make_thumbnails(photo, outputs, Limits::pixels(u64::MAX));
                std::hint::black_box(made.expect("thumbnails"));
                started.elapsed()
            })
            .collect();
        runs.sort();
        runs[RUNS / 2].as_secs_f64() * 1000.0
    };
    let plain = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg);
    let auto = ResizeArgs { auto_focus: true, ..plain };
    let four: Vec<ResizeArgs> = [(100, 100), (120, 90), (90, 120), (128, 128)]
        .map(|(w, h)| ResizeArgs::new(w, h, Fit::Cover, OutputFormat::Jpeg))
        .into();
    let tagged: Vec<(Vec<u8>, Vec<u8>)> = photos.iter().map(|p| with_p3_profile(p)).collect();
    let n = photos.len() as f64;
    let mean = |f: &dyn Fn(usize) -> f64| (0..photos.len()).map(f).sum::<f64>() / n;
    let base = mean(&|i| time(&photos[i], &[plain]));
    let focus = mean(&|i| time(&photos[i], &[auto]));
    let renditions = mean(&|i| time(&photos[i], &four));
    let untagged_copy = mean(&|i| time(&tagged[i].1, &[plain]));
    let p3 = mean(&|i| time(&tagged[i].0, &[plain]));
    println!(
        "\nWhat options cost, {} baseline JPEGs, 100x100 cover JPEG, ms per image (median of {RUNS}):",
        photos.len()
    );
    println!(
        "plain {base:.2}; focus=auto {focus:.2} (+{:.2}); 4 renditions from one decode {renditions:.2} ({:.2} per thumbnail, {:.2}x one)",
        focus - base,
        renditions / 4.0,
        renditions / base
    );
    println!(
        "Display P3 profile converted to sRGB: {p3:.2} against {untagged_copy:.2} for the same pixels untagged (+{:.2})",
        p3 - untagged_copy
    );
}

/// A photo re-encoded twice at quality 95: tagged with a Display P3 profile, and untagged.
fn with_p3_profile(photo: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use image::ImageEncoder;
    let rgb = image::load_from_memory(photo).expect("photo decodes").into_rgb8();
    let encode = |icc: Option<Vec<u8>>| {
        let mut out = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
        if let Some(icc) = icc {
            encoder.set_icc_profile(icc).expect("JPEG takes a profile");
        }
        encoder.write_image(rgb.as_raw(), rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8).expect("encodes");
        out
    };
    (encode(Some(thumbq_common::fixtures::WideGamut::DisplayP3.icc())), encode(None))
}

/// Whether a JPEG is progressive, from its frame header (not from an EXIF thumbnail's).
fn is_progressive(jpeg: &[u8]) -> bool {
    turbojpeg::read_header(jpeg).is_ok_and(|header| header.is_progressive)
}

/// One `vipsthumbnail` invocation over all `files`, on one thread, so its start-up is spread over many images.
fn vipsthumbnail(files: &[PathBuf], ext: &str) -> Option<Duration> {
    let out = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let status = Command::new("vipsthumbnail")
        .env("VIPS_CONCURRENCY", "1")
        .args(["-s", "100x100", "--smartcrop", "centre", "-o"])
        .arg(format!("{}/%s.{ext}", out.path().display()))
        .args(files)
        .status()
        .ok()?;
    status.success().then(|| started.elapsed())
}

/// Peak resident memory of a child process that makes one thumbnail of a 50-megapixel JPEG.
fn memory_of_a_50_megapixel_jpeg() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("50mp.jpg");
    let (width, height) = (8660, 5774);
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 239) as u8])
    });
    image.save(&path).expect("50 MP JPEG written");
    drop(image);
    let output = Command::new(std::env::current_exe().expect("this bench")).arg(&path).output().expect("probe runs");
    println!(
        "\nMemory: {width}x{height} JPEG ({:.0} MP, {:.1} MB) to a 100x100 thumbnail: {}",
        f64::from(width * height) / 1e6,
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6,
        String::from_utf8_lossy(&output.stdout).trim()
    );
}

/// Child mode: makes one thumbnail and prints the process's peak resident memory (VmHWM). The thumbnail is 100x100
/// JPEG, or `THUMBQ_BENCH_PROBE=<side>:<format>[:animated]` (e.g. `1280:avif`, to size an encoder's memory).
fn rss_probe(path: &Path) {
    let bytes = std::fs::read(path).expect("probe input");
    let probe = std::env::var("THUMBQ_BENCH_PROBE").unwrap_or_else(|_| "100:jpeg".into());
    let mut parts = probe.split(':');
    let side: u32 = parts.next().and_then(|s| s.parse().ok()).expect("<side>:<format>");
    let format = parts.next().and_then(|f| OutputFormat::ALL.into_iter().find(|o| o.name() == f)).expect("a format");
    let animated = parts.next() == Some("animated");
    let args = ResizeArgs { animated, ..ResizeArgs::new(side, side, Fit::Cover, format) };
    let started = Instant::now();
    make_thumbnail(&bytes, &args, Limits::pixels(u64::MAX)).expect("thumbnail");
    let elapsed = started.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().strip_suffix(" kB"));
    let own: u64 = peak.and_then(|kib| kib.parse().ok()).unwrap_or(0);
    // A decoder's child processes (the PDF renderer, FFmpeg) ran beside this one: the largest is added.
    pdf_renderer::stop_waiting();
    let children = pdf_renderer::largest_child_peak_kib();
    println!(
        "peak resident {} kB (input held in memory included), {:.0} ms",
        own + children,
        elapsed.as_secs_f64() * 1e3
    );
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files
}
