//! The formats with a decoder of their own beyond JPEG, PNG and WebP: ms per 100x100 thumbnail, one core, the same
//! photos converted in the same run (HEIC and AVIF by heif-enc, JPEG XL by cjxl, a 2-second 1080p H.264 clip by
//! FFmpeg), against the JPEG they came from and against libvips' `vipsthumbnail` on the same file; with each one's
//! peak resident memory (a process per file: this bench's probe mode, and `vipsthumbnail`). A drawn SVG, a one-page
//! PDF and an animated GIF (to an animated WebP) have no photo to compare and are timed alone.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use image::{DynamicImage, ImageFormat};
use thumbq_common::{
    fixtures::{cjxl, encode, ffmpeg_video, heif_enc, pdf},
    task::{Fit, OutputFormat, ResizeArgs},
};
use thumbq_worker::pipeline::{Limits, make_thumbnail};

use super::RUNS;

/// Turns a JPEG photo into another format.
type Convert<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

/// The median ms of making `args` from `bytes`.
fn median_ms(bytes: &[u8], args: &ResizeArgs) -> f64 {
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(make_thumbnail(bytes, args, Limits::pixels(u64::MAX)).expect("thumbnail"));
            started.elapsed()
        })
        .collect();
    runs.sort();
    runs[RUNS / 2].as_secs_f64() * 1000.0
}

/// A 100x100 cover JPEG.
const JPEG_100: ResizeArgs = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg);

/// What one file cost thumbq and libvips: ms per thumbnail and peak resident MiB.
struct Costs {
    ms: f64,
    peak_mib: f64,
    vips_ms: Option<f64>,
    vips_peak_mib: Option<f64>,
}

impl Costs {
    /// Measures `bytes`, written as `file` for the processes, made into `args` (vips: `vips_suffix` on the input,
    /// `vips_output` the extension of its output).
    fn of(bytes: &[u8], file: &Path, args: &ResizeArgs, vips_suffix: &str, vips_output: &str) -> Self {
        std::fs::write(file, bytes).expect("written");
        let probe = format!("100:{}{}", args.format.name(), if args.animated { ":animated" } else { "" });
        let mut ours = Command::new(std::env::current_exe().expect("this bench"));
        ours.arg(file).env("THUMBQ_BENCH_PROBE", probe);
        // One process with one image and one with RUNS + 1: the difference is RUNS thumbnails without start-up. GNU
        // time (`bench/corpus.sh` installs it) reports its peak memory. Each image is a copy under a name of its
        // own: libvips caches a load by its file name, and the same name given twice decoded once (a JPEG XL
        // "took" 11 ms that way, against 650 ms for one decode).
        let copies = tempfile::tempdir().expect("a folder");
        let inputs: Vec<String> = (0..=RUNS)
            .map(|i| {
                let copy = copies.path().join(format!("{i}-{}", file.file_name().expect("a name").to_string_lossy()));
                std::fs::write(&copy, bytes).expect("written");
                format!("{}{vips_suffix}", copy.display())
            })
            .collect();
        let vips = |count: usize| {
            let out = tempfile::tempdir().expect("a folder");
            let mut command = Command::new("/usr/bin/time");
            command.args(["-f", "%M", "vipsthumbnail"]);
            command.env("VIPS_CONCURRENCY", "1").args(["-s", "100x100", "--smartcrop", "centre", "-o"]);
            command.arg(format!("{}/%s.{vips_output}", out.path().display()));
            command.args(&inputs[..count]);
            run(command)
        };
        let vips_ms = vips(1)
            .zip(vips(RUNS + 1))
            .map(|((one, _), (many, _))| (many.saturating_sub(one)).as_secs_f64() * 1000.0 / RUNS as f64);
        Self {
            ms: median_ms(bytes, args),
            peak_mib: run(ours).and_then(|(_, printed)| peak_mib(&printed)).unwrap_or(f64::NAN),
            vips_ms,
            vips_peak_mib: vips(1).and_then(|(_, printed)| peak_mib(&printed)),
        }
    }

    /// The mean times and the largest peaks of `all`; libvips' only where it read every file.
    fn mean(all: &[Self]) -> Self {
        let n = all.len() as f64;
        let vips_ms: Option<Vec<f64>> = all.iter().map(|c| c.vips_ms).collect();
        let vips_peaks: Option<Vec<f64>> = all.iter().map(|c| c.vips_peak_mib).collect();
        Self {
            ms: all.iter().map(|c| c.ms).sum::<f64>() / n,
            peak_mib: all.iter().map(|c| c.peak_mib).fold(0.0, f64::max),
            vips_ms: vips_ms.map(|v| v.iter().sum::<f64>() / n),
            vips_peak_mib: vips_peaks.map(|v| v.into_iter().fold(0.0, f64::max)),
        }
    }
}

/// Runs `command` to its end: how long it took and what it printed (standard output, then standard error), or
/// `None` when it cannot run or fails.
fn run(mut command: Command) -> Option<(Duration, String)> {
    let started = Instant::now();
    let output = command.output().ok()?;
    let elapsed = started.elapsed();
    let printed = [String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)].concat();
    output.status.success().then_some((elapsed, printed))
}

/// A process's peak resident memory in MiB, as it printed it: this bench's probe mode (`peak resident N kB`), or GNU
/// time's `%M` (KiB) on its last line. (Not the kernel's `wait4` accounting: a child spawned by `vfork` inherits
/// this bench's own peak.)
fn peak_mib(printed: &str) -> Option<f64> {
    let kib = match printed.split_once("peak resident ") {
        Some((_, rest)) => rest.split_whitespace().next()?,
        None => printed.lines().last()?.trim(),
    };
    kib.parse::<f64>().ok().map(|kib| kib / 1024.0)
}

/// One row: `name`, the average megapixels, thumbq's costs, and JPEG's ms for the ratio (if any).
fn row(name: &str, megapixels: Option<f64>, costs: &Costs, jpeg_ms: Option<f64>) {
    let or_na = |v: Option<f64>, digits: usize| v.map_or("n/a".into(), |v| format!("{v:.digits$}"));
    println!(
        "{name:<8} {:>7} {:>8.1} {:>8} {:>8} {:>9} {:>9.0} {:>9}",
        or_na(megapixels, 1),
        costs.ms,
        or_na(jpeg_ms.map(|j| costs.ms / j), 2),
        or_na(costs.vips_ms, 1),
        or_na(costs.vips_ms.map(|v| costs.ms / v), 2),
        costs.peak_mib,
        or_na(costs.vips_peak_mib, 0),
    );
}

/// Prints the table for `photos` (JPEGs).
pub fn other_formats(photos: &[Vec<u8>]) {
    println!("\nOther inputs, 100x100 cover JPEG, ms per image (median of {RUNS}), {} photos:", photos.len());
    println!(
        "{:<8} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "format", "avg MP", "ms", "x JPEG", "vips ms", "x vips", "peak MiB", "vips MiB"
    );
    let folder = tempfile::tempdir().expect("a folder");
    let png = |photo: &[u8]| encode(&image::load_from_memory(photo).expect("a photo"), ImageFormat::Png);
    let clip = |photo: &[u8]| {
        let still = folder.path().join("still.jpg");
        std::fs::write(&still, photo).expect("written");
        let still = still.display().to_string();
        let fit = "scale=1920:1080:force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2";
        ffmpeg_video(
            "mp4",
            &["-loop", "1", "-i", &still, "-t", "2", "-r", "25", "-vf", fit, "-c:v", "libx264", "-pix_fmt", "yuv420p"],
        )
    };
    let conversions: [(&str, &str, &Convert<'_>); 6] = [
        ("jpeg", "jpg", &|p| p.to_vec()),
        ("heic", "heic", &|p| heif_enc(&png(p), &["-q", "80"])),
        // As phones write them: with a thumbnail item of 320 pixels, which a 100x100 thumbnail is made from.
        ("heic-t", "heic", &|p| heif_enc(&png(p), &["-q", "80", "-t", "320"])),
        ("avif", "avif", &|p| heif_enc(&png(p), &["-A", "-q", "80"])),
        ("jxl", "jxl", &|p| cjxl(p, &["-j", "0", "-d", "1"])),
        ("mp4", "mp4", &clip),
    ];
    let mut jpeg_ms = None;
    for (name, extension, convert) in conversions {
        let mut megapixels = 0.0;
        let file = folder.path().join(format!("input.{extension}"));
        let all: Vec<Costs> = photos
            .iter()
            .map(|photo| {
                let decoded: DynamicImage = image::load_from_memory(photo).expect("a photo");
                megapixels += f64::from(decoded.width()) * f64::from(decoded.height()) / 1e6;
                Costs::of(&convert(photo), &file, &JPEG_100, "", "jpg")
            })
            .collect();
        let costs = Costs::mean(&all);
        row(name, Some(megapixels / photos.len() as f64), &costs, jpeg_ms);
        jpeg_ms = jpeg_ms.or(Some(costs.ms));
    }
    let svg = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 400 300'><defs><linearGradient id='g'>\
        <stop offset='0' stop-color='red'/><stop offset='1' stop-color='blue'/></linearGradient></defs>\
        <rect width='400' height='300' fill='url(#g)'/><circle cx='200' cy='150' r='90' fill='#fff8'/></svg>";
    let page = pdf(595, 842, "0 0 1 rg 50 50 495 742 re f 1 0 0 RG 8 w 50 50 m 545 792 l S", "");
    let animation = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/example-animation.gif"))
        .expect("the example animation");
    let animated = ResizeArgs { animated: true, ..ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Webp) };
    // `vips`: libvips' input suffix and output extension.
    let alone = |name: &str, extension: &str, bytes: &[u8], args: &ResizeArgs, (suffix, output): (&str, &str)| {
        let file = folder.path().join(format!("input.{extension}"));
        row(name, None, &Costs::of(bytes, &file, args, suffix, output), None);
    };
    alone("svg", "svg", svg.as_bytes(), &JPEG_100, ("", "jpg"));
    alone("pdf", "pdf", &page, &JPEG_100, ("", "jpg"));
    // Every frame, to an animated WebP (vips: `[n=-1]` loads every page of the GIF).
    alone("gif-anim", "gif", &animation, &animated, ("[n=-1]", "webp"));
    println!("x JPEG: against the JPEG photos the others were made from. heic-t: with a 320-pixel thumbnail item, as");
    println!(
        "phones write; mp4: the clip's poster frame (ffprobe and ffmpeg as processes); pdf: hayro in a warm renderer process"
    );
    println!("likewise. vips ms: vipsthumbnail's time per image without its start-up; n/a where libvips (Debian's");
    println!("build) does not read the format. Peak MiB: a process making one thumbnail, the input held included.");
}
