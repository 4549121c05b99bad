//! A seeded mutation fuzzer that runs on stable Rust, as a test: valid images of every accepted format are mutated
//! (bit flips, boundary bytes, cut, spliced and duplicated runs, lying sizes) and fed to the header probe, the JPEG
//! marker rewriter, the WebP decoder (FFI) and the whole pipeline. Every input must come back as a value or an error:
//! no panic, no allocation past its limit, no decode past a time bound. cargo-fuzz needs a nightly compiler and
//! libFuzzer; this needs neither, and `make test` runs it on every change.
//!
//! `make test` runs `THUMBQ_FUZZ_ITERATIONS` (default 5000) mutations from seed `THUMBQ_FUZZ_SEED` (default fixed);
//! `make fuzz` runs a long, randomly seeded, optimised run and prints its seed so any finding can be replayed.
//! Allocations are counted by a counting global allocator for this test binary (Rust allocations only: the C
//! decoders are bounded by libjpeg-turbo's memory cap and the pixel limit). The allocator is this test module's only
//! `unsafe`.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    time::{Duration, Instant},
};

use image::{DynamicImage, ImageFormat, RgbImage};
use thumbq_common::{
    fixtures::{
        animated_avif, animated_gif, animated_webp, cjxl, encode, ffmpeg_video, heif_enc, oriented_jpeg, pdf,
        png_with_icc_bomb, sample_image, transparent_png,
    },
    image_probe::{self, HEADER_ALLOC_LIMIT},
    task::{Fit, OutputFormat, ResizeArgs},
};
use turbojpeg::Subsamp;

use super::{
    Limits,
    codec::{jpeg::layout as jpeg_layout, webp},
    estimate_peak, make_thumbnail, test_images,
};

/// Counts each thread's live and peak bytes (per thread, so parallel tests do not blur each other's figures).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.with(|l| l.get()) + layout.size();
        LIVE.with(|l| l.set(live));
        PEAK.with(|p| p.set(p.get().max(live)));
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.with(|l| l.set(l.get().saturating_sub(layout.size())));
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it held at once beyond what was live before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let value = f();
    (value, PEAK.with(Cell::get) - base)
}

/// An SVG with shapes, a gradient, a filter, text, a `<use>` and a style sheet: resvg's main paths.
const SVG_SEED: &str = r##"<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="48" height="32" viewBox="0 0 48 32">
<style>.a { fill: url(#g); stroke: #123; stroke-width: 2 }</style>
<defs><linearGradient id="g"><stop offset="0" stop-color="red"/><stop offset="1" stop-color="blue"/></linearGradient>
<filter id="b"><feGaussianBlur stdDeviation="1.5"/></filter><path id="p" d="M2 2 L20 4 Q30 30 8 28 Z"/></defs>
<rect class="a" x="1" y="1" width="46" height="30" rx="4"/><use xlink:href="#p" filter="url(#b)" fill="green"/>
<circle cx="36" cy="16" r="9" fill-opacity="0.5"/><text x="4" y="20" font-size="8">thumbq</text></svg>"##;

/// Seeds whose decoders are child processes (FFmpeg: several per input, tens of milliseconds each): a quarter of
/// their picks are run, so `make test`'s run stays seconds long. (A PDF is drawn in this process under test: see
/// `codec/pdf/renderer.rs`.)
const CHILD_PROCESS_SEEDS: [&str; 2] = ["mp4", "avif-animated"];

/// Valid images of every accepted format, small enough to decode in milliseconds.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let rgb = RgbImage::from_fn(96, 64, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) * 5) as u8]));
    vec![
        ("jpeg", sample_image(ImageFormat::Jpeg, 120, 80)),
        ("jpeg-exif", oriented_jpeg(64, 48, 6)),
        ("jpeg-progressive", test_images::progressive_jpeg(128, 96, Subsamp::Sub2x2)),
        ("jpeg-progressive-444", test_images::progressive_jpeg(72, 40, Subsamp::None)),
        ("png", sample_image(ImageFormat::Png, 80, 60)),
        ("png-alpha", transparent_png(48, 48)),
        ("png-icc", png_with_icc_bomb(1 << 20)),
        ("webp-lossless", sample_image(ImageFormat::WebP, 64, 48)),
        ("webp-lossy", test_images::lossy_webp(rgb.as_raw(), 96, 64)),
        ("gif", sample_image(ImageFormat::Gif, 40, 30)),
        // Run with `animated=true` (see `exercise`): every frame through the animation path and its encoders.
        ("gif-animated", animated_gif(40, 30, 4, Some(1))),
        ("webp-animated", animated_webp(40, 30, 3, 0)),
        ("avif-animated", animated_avif(40, 30, 3)),
        ("bmp", sample_image(ImageFormat::Bmp, 40, 30)),
        ("tiff", sample_image(ImageFormat::Tiff, 40, 30)),
        // The `image` crate's ICO reader takes the PNGs inside as RGBA only (as Windows writes them).
        ("ico", encode(&image::load_from_memory(&transparent_png(32, 32)).expect("a PNG"), ImageFormat::Ico)),
        ("pnm", sample_image(ImageFormat::Pnm, 40, 30)),
        ("qoi", sample_image(ImageFormat::Qoi, 40, 30)),
        ("heic", heif_enc(&sample_image(ImageFormat::Png, 48, 32), &["-q", "50"])),
        ("avif-alpha", heif_enc(&transparent_png(32, 32), &["-A", "-q", "50"])),
        ("jxl-lossy", cjxl(&sample_image(ImageFormat::Png, 48, 32), &["-d", "2"])),
        // Large enough for a 48x32 thumbnail to be made from its 1/8 (LF) image.
        ("jxl-lf", cjxl(&sample_image(ImageFormat::Png, 512, 384), &["-d", "2"])),
        ("jxl-lossless-alpha", cjxl(&transparent_png(24, 24), &["-d", "0"])),
        ("jxl-container", cjxl(&oriented_jpeg(32, 24, 6), &[])),
        ("svg", SVG_SEED.as_bytes().to_vec()),
        (
            "mp4",
            ffmpeg_video(
                "mp4",
                &["-f", "lavfi", "-i", "testsrc=s=32x24:d=0.5:r=10", "-c:v", "libx264", "-pix_fmt", "yuv420p"],
            ),
        ),
        ("pdf", pdf(120, 80, "1 0 0 rg 10 10 50 40 re f 0 0 1 RG 4 w 0 0 m 120 80 l S", "/Rotate 90")),
        // Floating-point samples: libtiff's row reader (`codec/tiff/samples.rs`), not its RGBA reader.
        (
            "tiff-float",
            encode(&DynamicImage::ImageRgb32F(DynamicImage::ImageRgb8(rgb.clone()).into_rgb32f()), ImageFormat::Tiff),
        ),
    ]
}

/// One random mutation of `input`.
fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        if data.is_empty() {
            data.push(rng.u8(..));
        }
        let at = rng.usize(..data.len());
        match rng.u8(..7) {
            0 => data[at] ^= 1 << rng.u8(..8),
            1 => data[at] = *rng.choice(&[0x00, 0xFF, 0x7F, 0x80, 0xD8, 0xD9, 0xDA, 0xC2]).unwrap_or(&0),
            // A lying size: a big-endian u16 or u32 set to a boundary value (headers are full of them).
            2 => {
                let value = *rng.choice(&[0u32, 1, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF]).unwrap_or(&0);
                let width = if rng.bool() { 2 } else { 4 };
                let bytes = value.to_be_bytes();
                for (i, b) in bytes[4 - width..].iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => data.truncate(at),
            4 => {
                let len = rng.usize(1..=64.min(data.len() - at));
                let run: Vec<u8> = data[at..at + len].to_vec();
                let to = rng.usize(..=data.len());
                data.splice(to..to, run);
            }
            5 => {
                let end = (at + rng.usize(1..=256)).min(data.len());
                data.drain(at..end);
            }
            _ => {
                let noise: Vec<u8> = (0..rng.usize(1..=32)).map(|_| rng.u8(..)).collect();
                data.splice(at..at, noise);
            }
        }
    }
    data
}

/// How long any one input may take through every path, unoptimised. Generous: a hang is minutes.
const TIME_BOUND: Duration = Duration::from_secs(5);
/// The pixel limit the fuzzed pipeline runs with.
const MAX_PIXELS: u64 = 16_000_000;

/// Feeds one input to every path; panics (failing the test) on a broken bound. True when it made a thumbnail.
fn exercise(name: &str, data: &[u8]) -> bool {
    let started = Instant::now();
    let (probe, probe_peak) = peak_of(|| image_probe::probe(data, MAX_PIXELS));
    let probe_bound = HEADER_ALLOC_LIMIT as usize + 2 * data.len() + (1 << 20);
    assert!(probe_peak <= probe_bound, "{name}: the probe held {probe_peak} bytes");

    if let Some(layout) = jpeg_layout::read(data) {
        let _ = layout.for_one_eighth(data);
    }
    let _ = webp::decode_scaled(data, 1.0 + f64::from(data.len() as u32 % 8));

    let args = if name.contains("animated") {
        ResizeArgs { animated: true, ..ResizeArgs::new(48, 32, Fit::Cover, OutputFormat::Webp) }
    } else {
        ResizeArgs::new(48, 32, Fit::Cover, OutputFormat::Png)
    };
    let estimate = estimate_peak(data, std::slice::from_ref(&args), &Limits::pixels(MAX_PIXELS));
    let limits = Limits { decoder_memory_mib: 64, ..Limits::pixels(MAX_PIXELS) };
    let (made, peak) = peak_of(|| make_thumbnail(data, &args, limits));
    let bound = match &estimate {
        // What admission would reserve for it, with room for the encoder and the allocator's rounding.
        Ok(estimate) => (*estimate as usize) * 3 / 2 + (16 << 20),
        Err(_) => probe_bound,
    };
    assert!(peak <= bound, "{name}: the pipeline held {peak} bytes, over {bound} (estimate {estimate:?})");
    assert!(probe.is_ok() || made.is_err(), "{name}: a thumbnail from an image the probe refused");
    if let Ok(thumbnail) = &made {
        assert!(image::load_from_memory(&thumbnail.bytes).is_ok(), "{name}: the thumbnail does not decode");
    }
    assert!(started.elapsed() < TIME_BOUND, "{name}: took {:?}", started.elapsed());
    made.is_ok()
}

fn setting(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn mutated_images_never_panic_overallocate_or_hang() {
    let iterations = setting("THUMBQ_FUZZ_ITERATIONS", 5000);
    let seed = setting("THUMBQ_FUZZ_SEED", 0x7468_756d_6271);
    eprintln!("fuzzing {iterations} mutations, THUMBQ_FUZZ_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let seeds = seeds();
    for (name, data) in &seeds {
        assert!(exercise(name, data), "the seed {name} makes a thumbnail");
    }
    let mut made = 0;
    for i in 0..iterations {
        let (name, data) = &seeds[rng.usize(..seeds.len())];
        if CHILD_PROCESS_SEEDS.contains(name) && rng.u8(..4) != 0 {
            continue;
        }
        let mutated = mutate(&mut rng, data);
        let label = format!("{name} mutation {i} (seed {seed})");
        match std::panic::catch_unwind(|| exercise(&label, &mutated)) {
            Ok(thumbnail) => made += usize::from(thumbnail),
            Err(panic) => {
                let path = std::env::temp_dir().join(format!("thumbq-fuzz-{seed}-{i}.bin"));
                let _ = std::fs::write(&path, &mutated);
                eprintln!("the failing input is saved at {}", path.display());
                std::panic::resume_unwind(panic);
            }
        }
    }
    // Mutations that still decode reach the decoders' depths; if none did, the fuzzer would test only the probe.
    eprintln!("{made} of {iterations} mutations still made a thumbnail");
    assert!(made * 10 >= iterations as usize, "only {made} of {iterations} mutations got past the header");
}

#[test]
fn a_corrupt_lossy_webp_is_refused_without_a_whole_decode() {
    // The fuzzer's first finding: a lossy WebP claiming 9056×1588 pixels that libwebp refuses as corrupt.
    let rgb = RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut webp = test_images::lossy_webp(rgb.as_raw(), 96, 64);
    let frame = webp.windows(3).position(|w| w == [0x9d, 0x01, 0x2a]).expect("a VP8 key frame") + 3;
    webp[frame..frame + 4].copy_from_slice(&[0x60, 0x23, 0x34, 0x06]);
    let args = ResizeArgs::new(48, 32, Fit::Cover, OutputFormat::Png);
    let (made, peak) = peak_of(|| make_thumbnail(&webp, &args, Limits::pixels(MAX_PIXELS)));
    assert!(made.is_err());
    assert!(peak < 8 << 20, "held {peak} bytes");
}

#[test]
fn a_jpeg_xl_whose_table_of_contents_claims_a_gigabyte_is_refused_without_reserving_it() {
    // The fuzzer's finding in jxl-oxide: 21 bytes, a 24x24 image whose frame's table of contents declares a group of
    // about 1 GB, which jxl-oxide reserves before the bytes arrive unless an allocation tracker bounds it.
    let jxl = [
        0xff, 0x0a, 0x45, 0xc0, 0x82, 0xe2, 0x42, 0x08, 0x08, 0x10, 0x00, 0x7f, 0xff, 0xff, 0xff, 0x8b, 0x15, 0x00,
        0xd4, 0x17, 0x33,
    ];
    let args = ResizeArgs::new(48, 32, Fit::Cover, OutputFormat::Png);
    let (made, peak) = peak_of(|| make_thumbnail(&jxl, &args, Limits::pixels(MAX_PIXELS)));
    assert!(made.is_err());
    assert!(peak < 32 << 20, "held {peak} bytes");
}

#[test]
fn an_animated_webp_frame_that_claims_more_than_its_canvas_is_refused_without_decoding_it() {
    // The fuzzer's finding in the `image` crate's WebP animation reader: a 40x30 animation whose first frame's VP8
    // header claims more pixels made it allocate 40 MB. libwebp's demuxer checks frames against the canvas.
    let mut webp = animated_webp(40, 30, 3, 0);
    let frame = webp.windows(3).position(|w| w == [0x9d, 0x01, 0x2a]).expect("a VP8 key frame") + 3;
    // 4000x3000, 14 bits each, little-endian.
    webp[frame..frame + 4].copy_from_slice(&[0xa0, 0x0f, 0xb8, 0x0b]);
    let args = ResizeArgs { animated: true, ..ResizeArgs::new(48, 32, Fit::Cover, OutputFormat::Webp) };
    let (made, peak) = peak_of(|| make_thumbnail(&webp, &args, Limits::pixels(MAX_PIXELS)));
    assert!(made.is_err());
    assert!(peak < 8 << 20, "held {peak} bytes");
}

#[test]
fn an_animated_webp_whose_first_frame_claims_a_huge_size_is_refused_without_allocating_it() {
    // The fuzzer's finding (seed 12345, mutation 13812 of webp-animated): its first frame's VP8 header claims
    // 16168x16383 pixels, which the `image` crate's reader allocated (397 MB) for the still first frame before
    // finding the frame corrupt. libwebp's animation decoder checks frames against the canvas.
    let mut webp = animated_webp(40, 30, 3, 0);
    let frame = webp.windows(3).position(|w| w == [0x9d, 0x01, 0x2a]).expect("a VP8 key frame") + 3;
    webp[frame..frame + 4].copy_from_slice(&[0x28, 0xff, 0xff, 0xff]);
    for animated in [false, true] {
        let args = ResizeArgs { animated, ..ResizeArgs::new(48, 32, Fit::Cover, OutputFormat::Webp) };
        let (made, peak) = peak_of(|| make_thumbnail(&webp, &args, Limits::pixels(MAX_PIXELS)));
        assert!(made.is_err());
        assert!(peak < 8 << 20, "animated {animated}: held {peak} bytes");
    }
}
