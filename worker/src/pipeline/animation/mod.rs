//! Animated output (`animated=true` on an animated GIF, WebP or AVIF): every frame decoded, composited on the canvas,
//! resampled for each animated output and kept small until the animation is encoded; the other outputs get the
//! first frame, as from a still image. Frame by frame, so the memory is one canvas and the small frames, whatever
//! the length; the frames × pixels of the whole animation are bounded from its structure before the first decode
//! (`THUMBQ_MAX_ANIMATION_PIXELS`).

use std::io::Cursor;

use image::{
    AnimationDecoder, DynamicImage, ImageDecoder, Limits as DecoderLimits, RgbaImage, codecs::gif::GifDecoder,
};
use thumbq_common::{
    image_probe::{self, Animation, Probe},
    task::{ResizeArgs, SourceFormat},
};

use super::{
    Limits, PipelineError, Thumbnail, codec, colour,
    finish::{self, AnimationFrame},
    plan::DecodePlan,
    probe::Source,
    resample,
};

/// The animation to keep for `outputs`, if one of them asks for it (the API only lets WebP and GIF outputs ask)
/// and `bytes` hold one.
pub fn wanted(bytes: &[u8], format: SourceFormat, outputs: &[ResizeArgs]) -> Option<Animation> {
    outputs.iter().any(|args| args.animated).then(|| image_probe::animation(bytes, format)).flatten()
}

/// Refuses an animation whose frames × pixels are over `max_pixels` (`THUMBQ_MAX_ANIMATION_PIXELS`).
pub fn check(animation: Animation, probe: &Probe, max_pixels: u64) -> Result<(), PipelineError> {
    let (frames, width, height) = (animation.frames, probe.width, probe.height);
    if u64::from(frames) * u64::from(width) * u64::from(height) > max_pixels {
        return Err(PipelineError::AnimationTooLarge { frames, width, height, max_pixels });
    }
    Ok(())
}

/// The most memory making `outputs` from the animation takes, planned as `plans` with the decode up to `reduction`
/// times smaller: the decoder's canvas, its frame and the composited copy, a premultiplied copy for the resampler,
/// every small frame of every animated output, and the encoder's own frames (libwebp keeps the previous canvas and
/// its candidates: about six frames).
pub fn peak(
    bytes: &[u8],
    probe: &Probe,
    (plans, reduction): (&[DecodePlan], f64),
    outputs: &[ResizeArgs],
    animation: Animation,
) -> u64 {
    let canvas = u64::from(probe.width) * u64::from(probe.height) * 4;
    let small = |plan: &DecodePlan| u64::from(plan.full.width) * u64::from(plan.full.height) * 4;
    let kept: u64 = plans
        .iter()
        .zip(outputs)
        .map(|(plan, args)| if args.animated { small(plan) * u64::from(animation.frames) } else { small(plan) })
        .sum();
    let encoder = plans.iter().map(|plan| small(plan) * 6).max().unwrap_or(0);
    // An AVIF sequence's frames come from FFmpeg, a process of its own on the same machine, all at once: its raw
    // output (read into a buffer that may double as it grows) and the frames cut from it.
    let ffmpeg = if probe.format == SourceFormat::Avif {
        let (width, height) = codec::drawn_size(probe, reduction);
        codec::video::FFMPEG_BYTES + 3 * u64::from(animation.frames) * u64::from(width) * u64::from(height) * 4
    } else {
        0
    };
    4 * canvas + kept + encoder + 2 * bytes.len() as u64 + (4 << 20) + ffmpeg
}

/// Makes every output from the frames of `source`, which holds `animation`.
pub fn make(
    source: &Source<'_>,
    outputs: &[ResizeArgs],
    limits: Limits,
    animation: Animation,
) -> Result<Vec<Thumbnail>, PipelineError> {
    let (mut plans, reduction) = DecodePlan::all(source.header.orientation, &source.probe, outputs);
    let to_srgb = colour::ToSrgb::new(source.header.icc.as_deref());
    let mut args: Vec<ResizeArgs> = outputs.to_vec();
    let mut tracks: Vec<Vec<AnimationFrame>> = vec![Vec::new(); outputs.len()];
    let mut firsts: Vec<Option<DynamicImage>> = vec![None; outputs.len()];
    let frames = frames(source.bytes, &source.probe, reduction, animation.frames)?;
    // The structure's count bounded the memory estimate: a decoder that finds more frames stops there.
    for (index, frame) in frames.take(animation.frames as usize).enumerate() {
        let frame = match frame {
            Ok(frame) => frame,
            // As browsers do, a cut or damaged animation plays the frames before the damage.
            Err(e) if index > 0 => {
                tracing::warn!(error = %e, frames = index, "the animation is damaged after {index} frames; keeping them");
                break;
            }
            Err(e) => return Err(e),
        };
        let (canvas, delay_ms) = frame;
        let canvas = DynamicImage::ImageRgba8(canvas);
        for (k, (args, plan)) in args.iter_mut().zip(&mut plans).enumerate() {
            if index > 0 && !args.animated {
                continue;
            }
            if index == 0 {
                // The crop is chosen once, on the first frame, so that it holds still.
                plan.focus = resample::focus(&canvas, args, plan);
                args.auto_focus = false;
            }
            let mut small = resample::resample(&canvas, args, *plan)?;
            if let Some(to_srgb) = &to_srgb {
                small = to_srgb.apply(small);
            }
            if args.animated {
                small.apply_orientation(plan.orientation);
                tracks[k].push((small.into_rgba8(), delay_ms));
            } else {
                firsts[k] = Some(small);
            }
        }
        limits.check_time(0, outputs.len())?;
    }
    let mut thumbnails = Vec::with_capacity(outputs.len());
    for (k, ((args, plan), track)) in args.iter().zip(&plans).zip(&tracks).enumerate() {
        let thumbnail = match firsts[k].take() {
            Some(first) => finish::finish(first, plan.orientation, args, k == 0)?,
            None => finish::finish_animation(track, args, animation.plays, k == 0)?,
        };
        thumbnails.push(thumbnail);
        if k + 1 < outputs.len() {
            limits.check_time(k + 1, outputs.len())?;
        }
    }
    Ok(thumbnails)
}

/// Each frame of an animation, composited on the canvas as browsers show it, with how long it shows (ms).
type Frames<'a> = Box<dyn Iterator<Item = Result<(RgbaImage, u32), PipelineError>> + 'a>;

/// The frames of a GIF (the `image` crate's decoder, its allocations bounded by a canvas and a frame: it checks
/// each frame's size against them), a WebP (libwebp's, `codec/webp/animation.rs`) or an AVIF sequence (FFmpeg's,
/// scaled by it up to `reduction` times smaller, `codec/video/`).
fn frames<'a>(bytes: &'a [u8], probe: &Probe, reduction: f64, count: u32) -> Result<Frames<'a>, PipelineError> {
    let failed = |e: image::ImageError| PipelineError::Decode(e.to_string());
    match probe.format {
        SourceFormat::Gif => {
            let mut limits = DecoderLimits::default();
            let canvas = u64::from(probe.width) * u64::from(probe.height) * 4;
            limits.max_alloc = Some(3 * canvas + bytes.len() as u64 + (1 << 20));
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(failed)?;
            decoder.set_limits(limits).map_err(failed)?;
            Ok(Box::new(decoder.into_frames().map(move |frame| {
                let frame = frame.map_err(failed)?;
                let (numerator, denominator) = frame.delay().numer_denom_ms();
                Ok((frame.into_buffer(), numerator / denominator.max(1)))
            })))
        }
        SourceFormat::Webp => Ok(Box::new(codec::webp::animation::frames(bytes)?)),
        SourceFormat::Avif => {
            let frames = codec::video::frames(bytes, probe.format, codec::drawn_size(probe, reduction), count)?;
            Ok(Box::new(frames.into_iter().map(Ok)))
        }
        other => Err(PipelineError::Decode(format!("{} holds no animation thumbq reads", other.label()))),
    }
}

#[cfg(test)]
mod tests;
