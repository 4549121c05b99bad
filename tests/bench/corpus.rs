//! The bench's inputs: the corpus' files, the renditions a row may ask for, and what the pipeline alone costs on
//! them (the yardstick of every row's overhead).

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use thumbq_common::task::{Fit, OutputFormat, ResizeArgs};

/// The release binaries' folder (beside the bench's own) and the corpus (`THUMBQ_BENCH_CORPUS`, else
/// `bench/corpus`); `None`, with why printed, when either is missing.
pub fn locate(bench: &str) -> Option<(PathBuf, PathBuf)> {
    let release =
        std::env::current_exe().expect("bench path").parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let corpus = std::env::var("THUMBQ_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/corpus"));
    if photos(&corpus.join("jpeg")).is_empty() || !release.join("thumbq-api").exists() {
        println!("{bench}: needs bench/corpus (bench/corpus.sh) and release binaries (cargo build --release)");
        return None;
    }
    Some((release, corpus))
}

/// The files of a folder, sorted.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files
}

/// Baseline JPEGs of 1 to 4 megapixels.
pub fn photos(dir: &Path) -> Vec<Vec<u8>> {
    list(dir)
        .into_iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter(|bytes| {
            turbojpeg::read_header(bytes).is_ok_and(|h| {
                let megapixels = (h.width * h.height) as f64 / 1e6;
                !h.is_progressive && (1.0..=4.2).contains(&megapixels)
            })
        })
        .collect()
}

/// The sizes of a row with renditions, first ones first: thumbnails of about 100 px, as a list view and its
/// high-density variants would ask.
pub const RENDITIONS: [&str; 4] = ["100x100", "120x90", "90x120", "128x128"];

/// Mean ms of the pipeline alone per image, one core.
pub fn pipeline_cost(images: &[Vec<u8>]) -> f64 {
    rendition_cost(images, 1)
}

/// Mean ms of the pipeline alone per image making the first `count` of [`RENDITIONS`] from one decode, one core.
pub fn rendition_cost(images: &[Vec<u8>], count: usize) -> f64 {
    let outputs: Vec<ResizeArgs> = RENDITIONS[..count]
        .iter()
        .map(|size| {
            let (width, height) = size.split_once('x').expect("a size");
            let (width, height) = (width.parse().expect("width"), height.parse().expect("height"));
            ResizeArgs::new(width, height, Fit::Cover, OutputFormat::Jpeg)
        })
        .collect();
    let outputs = if count == 1 { vec![ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg)] } else { outputs };
    let started = Instant::now();
    for _ in 0..5 {
        for image in images {
            let limits = thumbq_worker::pipeline::Limits::pixels(u64::MAX);
            std::hint::black_box(
                thumbq_worker::pipeline::make_thumbnails(image, &outputs, limits).expect("thumbnails"),
            );
        }
    }
    started.elapsed().as_secs_f64() * 1000.0 / (5 * images.len()) as f64
}
