//! What a task will cost a worker, estimated from what it asks for, so that the API can refuse an upload whose
//! renditions would hold a core for a minute (issue 23, item 10) before anything is stored or queued.
//!
//! The estimate is the sum over the task's outputs of their box's pixels (an upper bound: `contain` may make fewer,
//! and the API does not plan the fit) times a cost per pixel of resampling and encoding in the output's format and
//! quality. The costs were measured on the committed photo (see docs/performance.md, "What a task's work costs");
//! decoding is left out: it is paid once per task and bounded by `THUMBQ_MAX_PIXELS`.

use std::fmt;

use super::{OutputFormat, ResizeArgs};

/// `THUMBQ_MAX_TASK_WORK_MS`'s default: room for one 2048x2048 AVIF at quality 100 (the dearest single thumbnail)
/// and for the four default presets in any format, but not for several renditions near 2048x2048 in AVIF.
pub const DEFAULT_MAX_TASK_WORK_MS: u64 = 10_000;

/// Milliseconds of one core per megapixel of output, by quality, for the lossy formats whose encoders slow down as
/// the quality rises: `(quality, ms)` points, interpolated linearly, flat beyond the ends.
const AVIF_MS_PER_MP: [(u8, f64); 3] = [(50, 475.0), (80, 810.0), (100, 1455.0)];
const WEBP_MS_PER_MP: [(u8, f64); 2] = [(80, 110.0), (100, 127.0)];
/// Milliseconds per megapixel of the formats whose cost hardly depends on a quality (JPEG's is quality 100's).
const JPEG_MS_PER_MP: f64 = 66.0;
const PNG_MS_PER_MP: f64 = 78.0;
/// GIF: NeuQuant's palette at speed 10 and LZW (measured like the others, `make bench`).
const GIF_MS_PER_MP: f64 = 120.0;
const WEBP_LOSSLESS_MS_PER_MP: f64 = 154.0;

/// The estimated cost of making one output, in milliseconds of one core per megapixel.
pub fn ms_per_megapixel(args: &ResizeArgs) -> f64 {
    match args.format {
        OutputFormat::Png => PNG_MS_PER_MP,
        OutputFormat::Gif => GIF_MS_PER_MP,
        OutputFormat::Jpeg => JPEG_MS_PER_MP,
        OutputFormat::Webp if args.lossless => WEBP_LOSSLESS_MS_PER_MP,
        OutputFormat::Webp => interpolate(&WEBP_MS_PER_MP, args.quality()),
        OutputFormat::Avif => interpolate(&AVIF_MS_PER_MP, args.quality()),
    }
}

/// The estimated cost of making every output of a task (one decode's worth of renditions), in milliseconds of one
/// core.
pub fn estimate_ms(outputs: &[ResizeArgs]) -> u64 {
    let ms: f64 =
        outputs.iter().map(|args| f64::from(args.width) * f64::from(args.height) / 1e6 * ms_per_megapixel(args)).sum();
    ms.ceil() as u64
}

/// Refuses outputs whose estimated cost is over `max_ms` (`THUMBQ_MAX_TASK_WORK_MS`).
pub fn check_work(outputs: &[ResizeArgs], max_ms: u64) -> Result<(), TooMuchWork> {
    let estimate_ms = estimate_ms(outputs);
    if estimate_ms <= max_ms {
        return Ok(());
    }
    let megapixels = outputs.iter().map(|a| f64::from(a.width) * f64::from(a.height) / 1e6).sum();
    Err(TooMuchWork { estimate_ms, max_ms, outputs: outputs.len(), megapixels })
}

/// An upload that asks for more work than one task may cost; its message says the limit and how to stay under it.
#[derive(Debug, Clone, PartialEq)]
pub struct TooMuchWork {
    /// The estimate, in milliseconds of one core.
    pub estimate_ms: u64,
    /// The limit, `THUMBQ_MAX_TASK_WORK_MS`.
    pub max_ms: u64,
    /// Thumbnails asked for.
    pub outputs: usize,
    /// Their pixels, in millions.
    pub megapixels: f64,
}

impl fmt::Display for TooMuchWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { estimate_ms, max_ms, outputs, megapixels } = self;
        write!(
            f,
            "too much work for one upload: {outputs} thumbnail(s) of {megapixels:.1} megapixels in all would take \
             about {estimate_ms} ms of processing, over this service's limit of {max_ms} ms per upload; ask for \
             fewer or smaller sizes, a lower quality, or a faster format (jpeg, png or webp cost a seventh to a \
             twelfth of avif per pixel), or split the sizes over several uploads"
        )
    }
}

/// The value at `quality` of the polyline through `points` (sorted by quality), flat beyond its ends.
fn interpolate(points: &[(u8, f64)], quality: u8) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if quality <= first.0 {
        return first.1;
    }
    if quality >= last.0 {
        return last.1;
    }
    let at = points.windows(2).find(|w| quality <= w[1].0).expect("quality lies between the ends");
    let ((q0, v0), (q1, v1)) = (at[0], at[1]);
    v0 + (v1 - v0) * f64::from(quality - q0) / f64::from(q1 - q0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Fit, parse_presets};

    fn args(side: u32, format: OutputFormat, quality: Option<u8>) -> ResizeArgs {
        ResizeArgs { quality, ..ResizeArgs::new(side, side, Fit::Fill, format) }
    }

    #[test]
    fn the_attack_of_eight_large_avif_renditions_is_refused_with_the_limit_and_a_way_out() {
        // Issue 23, item 10: eight renditions near 2048x2048, AVIF at quality 100, took 48 s of one core.
        let attack: Vec<ResizeArgs> = (0..8).map(|i| args(2048 - i, OutputFormat::Avif, Some(100))).collect();
        let refused = check_work(&attack, DEFAULT_MAX_TASK_WORK_MS).unwrap_err();
        // The constants are calibrated on that measurement: the estimate is within 10 % of it.
        assert!((43_560..=53_240).contains(&refused.estimate_ms), "{refused:?}");
        let message = refused.to_string();
        for part in ["8 thumbnail(s)", "33.4 megapixels", &format!("limit of {DEFAULT_MAX_TASK_WORK_MS} ms"), "fewer"] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }
    }

    #[test]
    fn the_dearest_single_thumbnail_and_every_default_preset_combination_are_accepted() {
        for format in OutputFormat::ALL {
            let quality = format.is_lossy().then_some(100);
            check_work(&[args(ResizeArgs::MAX_SIDE, format, quality)], DEFAULT_MAX_TASK_WORK_MS).unwrap();
            let presets: Vec<ResizeArgs> = parse_presets(crate::task::DEFAULT_PRESETS)
                .unwrap()
                .iter()
                .map(|p| ResizeArgs { quality, ..ResizeArgs::new(p.width, p.height, Fit::Cover, format) })
                .collect();
            check_work(&presets, DEFAULT_MAX_TASK_WORK_MS).unwrap();
        }
        let lossless = ResizeArgs { lossless: true, ..args(ResizeArgs::MAX_SIDE, OutputFormat::Webp, None) };
        check_work(&[lossless], DEFAULT_MAX_TASK_WORK_MS).unwrap();
    }

    #[test]
    fn the_estimate_grows_with_pixels_quality_and_the_format_s_cost() {
        let ms = |side, format, quality| estimate_ms(&[args(side, format, quality)]);
        assert_eq!(ms(1000, OutputFormat::Jpeg, None), JPEG_MS_PER_MP as u64);
        assert_eq!(ms(2000, OutputFormat::Jpeg, None), 4 * JPEG_MS_PER_MP as u64, "proportional to the pixels");
        assert!(ms(1000, OutputFormat::Avif, None) > 10 * ms(1000, OutputFormat::Jpeg, None));
        assert!(ms(1000, OutputFormat::Avif, Some(100)) > ms(1000, OutputFormat::Avif, Some(90)));
        assert!(ms(1000, OutputFormat::Avif, Some(90)) > ms(1000, OutputFormat::Avif, None));
        assert_eq!(ms(1000, OutputFormat::Avif, Some(1)), ms(1000, OutputFormat::Avif, Some(50)), "flat below");
        assert!(ms(1000, OutputFormat::Webp, Some(100)) > ms(1000, OutputFormat::Webp, None));
        let both = estimate_ms(&[args(1000, OutputFormat::Jpeg, None), args(1000, OutputFormat::Png, None)]);
        assert_eq!(both, (JPEG_MS_PER_MP + PNG_MS_PER_MP) as u64, "renditions add up");
        let jpeg = [args(1000, OutputFormat::Jpeg, None)];
        assert_eq!(check_work(&jpeg, JPEG_MS_PER_MP as u64), Ok(()), "the limit itself is allowed");
        assert!(check_work(&jpeg, JPEG_MS_PER_MP as u64 - 1).is_err());
    }
}
