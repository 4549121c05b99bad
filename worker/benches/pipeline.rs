//! `make bench`, part 1: the pipeline alone, one core, per format, next to the naive `image` path and to libvips'
//! `vipsthumbnail` on the same files in the same run, as ratios. Also the output's PSNR against a full-resolution
//! reference, and the peak memory of making a thumbnail of a 50-megapixel JPEG.
//!
//! Corpus: `bench/corpus/{jpeg,png,webp}` (made by `bench/corpus.sh`), or `THUMBQ_BENCH_CORPUS`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use image::imageops::FilterType;
use thumbq_common::task::{Fit, OutputFormat, ResizeArgs};
use thumbq_worker::pipeline::{Limits, make_thumbnail, quality};

/// Timed runs per file of the thumbq pipeline (the median is kept).
const RUNS: usize = 5;

fn main() {
    if let Some(path) = std::env::args().nth(1).filter(|a| a.ends_with(".jpg")) {
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
    memory_of_a_50_megapixel_jpeg();
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

/// Child mode: makes one thumbnail and prints the process's peak resident memory (VmHWM).
fn rss_probe(path: &Path) {
    let bytes = std::fs::read(path).expect("probe input");
    let args = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg);
    let started = Instant::now();
    make_thumbnail(&bytes, &args, Limits::pixels(u64::MAX)).expect("thumbnail");
    let elapsed = started.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak =
        status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?").trim_start_matches("VmHWM:").trim();
    println!("peak resident {peak} (input held in memory included), {:.0} ms", elapsed.as_secs_f64() * 1000.0);
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files
}
