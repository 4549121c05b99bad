//! An independent corpus held to the mainstream imaging library: Pillow's own test images (about 1,000 files its
//! maintainers made, many of them odd on purpose), with Pillow's verdict on each, installed by
//! `deploy/native/test-tools.sh` (`tests/support/pillow_verdicts.py`). Every file Pillow decodes in a format thumbq
//! accepts must become a thumbnail of the right shape; every other file must be refused with an error, never a
//! panic or a hang. The formats thumbq declines are named in docs/api.md.

use std::time::Duration;

use thumbq_common::{
    image_probe::{self, ProbeError},
    task::{Fit, OutputFormat, ResizeArgs, SourceFormat},
};
use thumbq_worker::pipeline::{Deadline, Limits, PipelineError, make_thumbnail};

use crate::support::{spawn_app, tools::tool};

/// Pillow's verdict on one file, a line of `verdicts.jsonl`.
struct Verdict {
    path: String,
    format: Option<String>,
    decodes: bool,
    pixels: Option<u64>,
}

impl Verdict {
    fn parse(line: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        Self {
            path: v["path"].as_str().unwrap().to_owned(),
            format: v["format"].as_str().map(str::to_owned),
            decodes: v["decodes"].as_bool().unwrap(),
            pixels: v["width"].as_u64().zip(v["height"].as_u64()).map(|(w, h)| w.saturating_mul(h)),
        }
    }
}

/// thumbq's format for a format Pillow names, where thumbq accepts it (MPO is a JPEG with more pictures after the
/// first; PPM is Pillow's name for every PNM; DIB a BMP without its file header and CUR a cursor, which thumbq
/// does not sniff).
fn accepted(pillow: &str) -> Option<SourceFormat> {
    let name = match pillow {
        "MPO" => "jpeg",
        "PPM" => "pnm",
        other => other,
    };
    SourceFormat::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name) || f.label().eq_ignore_ascii_case(name))
}

/// Files Pillow decodes and thumbq refuses, each for its reason (docs/api.md, "Formats"). Three are from bmpsuite's
/// folder of invalid files: a plane count other than 1, RLE runs past the image's end, and RLE with a top-down row
/// order, which the BMP specification forbids; refusing them is what its author expects of a strict reader. An OS/2
/// 2.x BMP (a 64-byte header) is valid and not read yet: the `image` crate's BMP reader does not know that header.
/// Two PFMs (floating-point PNM, which Pillow counts as PPM) are not recognised: the `image` crate has no PFM reader.
/// An ICO whose directory and picture disagree on the size, and a QOI cut off before its end marker (15 bytes, one
/// pixel), are refused as corrupt.
const REFUSED: [&str; 8] = [
    "bmp/b/badplanes.bmp",
    "bmp/b/badrle.bmp",
    "bmp/b/rletopdown.bmp",
    "bmp/q/pal8os2v2.bmp",
    "hopper.pfm",
    "hopper_be.pfm",
    "hopper_unexpected.ico",
    "op_index.qoi",
];

/// The pixel limit of the test: thumbq's default.
const MAX_PIXELS: u64 = 100_000_000;

#[test]
fn every_corpus_image_pillow_decodes_in_an_accepted_format_becomes_a_thumbnail_and_no_file_panics() {
    crate::support::app::use_test_renderer();
    let corpus = tool("pillow/corpus");
    let verdicts = std::fs::read_to_string(corpus.join("verdicts.jsonl")).unwrap();
    let args = ResizeArgs::new(64, 64, Fit::Contain, OutputFormat::Png);
    let (mut made, mut refused, mut failures) = (0, 0, Vec::new());
    for line in verdicts.lines() {
        let verdict = Verdict::parse(line);
        let bytes = std::fs::read(corpus.join("images").join(&verdict.path)).unwrap();
        let limits = Limits { deadline: Some(Deadline::after(Duration::from_secs(20))), ..Limits::pixels(MAX_PIXELS) };
        let result = make_thumbnail(&bytes, &args, limits);
        let claimed = verdict.format.as_deref().and_then(accepted);
        let over_limit = verdict.pixels.is_some_and(|p| p > MAX_PIXELS);
        match result {
            Ok(thumbnail) => {
                made += 1;
                let (w, h) = (thumbnail.info.width, thumbnail.info.height);
                if w.max(h) != 64 {
                    failures.push(format!("{}: a {w}x{h} thumbnail for 64x64 contain", verdict.path));
                }
            }
            Err(PipelineError::Decode(reason)) if reason.starts_with("the decoder failed") => {
                failures.push(format!("{}: a decoder panicked: {reason}", verdict.path));
            }
            Err(_) if REFUSED.contains(&verdict.path.as_str()) => refused += 1,
            Err(error) if verdict.decodes && claimed.is_some() && !over_limit => {
                let probe = image_probe::probe(&bytes, MAX_PIXELS).map(|p| p.format.name());
                failures.push(format!("{} ({:?}, probe {probe:?}): {error}", verdict.path, verdict.format));
            }
            Err(_) => refused += 1,
        }
        // A file thumbq declines by its signature is one Pillow names in a format thumbq does not accept.
        if let Err(ProbeError::Unsupported(name)) = image_probe::probe(&bytes, MAX_PIXELS)
            && !REFUSED.contains(&verdict.path.as_str())
            && claimed.is_some()
            && verdict.decodes
        {
            failures.push(format!("{}: declined as {name} but Pillow reads it as {:?}", verdict.path, verdict.format));
        }
    }
    assert!(made > 600, "only {made} thumbnails made ({refused} refused)");
    assert!(failures.is_empty(), "{} of the corpus failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiffs_only_libtiff_reads_and_a_gif_without_colours_become_thumbnails_through_the_api() {
    let images = tool("pillow/corpus").join("images");
    let app = spawn_app().await;
    // BigTIFF; 16-bit CMYK; 32-bit floating point without a Photometric tag; 12-bit grey; tiled CMYK in JPEG; a
    // 1x1 GIF with no colour table.
    let files = [
        ("hopper_bigtiff.tif", (64, 64)),
        ("tiff_strip_cmyk_16l_jpeg.tif", (64, 64)),
        ("10ct_32bit_128.tiff", (64, 64)),
        ("12bit.cropped.tif", (64, 64)),
        ("tiff_tiled_cmyk_jpeg.tif", (64, 64)),
        ("no_palette.gif", (64, 64)),
    ];
    for (file, size) in files {
        let bytes = std::fs::read(images.join(file)).unwrap();
        let accepted = app.upload_ok(bytes, "width=64&height=64&fit=cover&format=png").await;
        let thumbnail = app.download_image(&accepted.name).await;
        assert_eq!((thumbnail.width(), thumbnail.height()), size, "{file}");
    }
    app.stop().await;
}
