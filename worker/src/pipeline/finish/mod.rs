//! Step 6, finish: the small image turned to its EXIF orientation (after resampling, so a quarter turn moves a
//! thumbnail's pixels, not a photo's), its placeholder, and its encoding in the format asked for.

mod animation;
pub mod encode;
mod placeholder;
pub mod webp;

pub use animation::AnimationFrame;
use image::{DynamicImage, metadata::Orientation};
use thumbq_common::task::{ImageInfo, ResizeArgs};

use super::{PipelineError, Thumbnail};

/// Orients and encodes a resampled output, with its ThumbHash when asked.
pub fn finish(
    mut small: DynamicImage,
    orientation: Orientation,
    args: &ResizeArgs,
    thumbhash: bool,
) -> Result<Thumbnail, PipelineError> {
    small.apply_orientation(orientation);
    let (width, height) = (small.width(), small.height());
    let thumbhash = thumbhash.then(|| placeholder::thumbhash(&small));
    let bytes = encode::encode(small, args)?;
    Ok(thumbnail(bytes, args, (width, height), thumbhash, None))
}

/// Encodes an animation's resampled frames (already oriented and in sRGB) as `args` ask, playing `plays` times (0:
/// for ever), with the first frame's ThumbHash when asked.
pub fn finish_animation(
    frames: &[AnimationFrame],
    args: &ResizeArgs,
    plays: u16,
    thumbhash: bool,
) -> Result<Thumbnail, PipelineError> {
    let (first, _) = frames.first().ok_or_else(|| PipelineError::Encode("an animation without frames".into()))?;
    let (width, height) = first.dimensions();
    let thumbhash = thumbhash.then(|| placeholder::thumbhash(&DynamicImage::ImageRgba8(first.clone())));
    let bytes = animation::encode(frames, args, plays)?;
    Ok(thumbnail(bytes, args, (width, height), thumbhash, Some(frames.len() as u32)))
}

/// A finished thumbnail of `bytes`, encoded as `args` asked.
fn thumbnail(
    bytes: Vec<u8>,
    args: &ResizeArgs,
    (width, height): (u32, u32),
    thumbhash: Option<String>,
    frames: Option<u32>,
) -> Thumbnail {
    let info = ImageInfo {
        format: args.format.name().to_owned(),
        width,
        height,
        bytes: bytes.len() as u64,
        thumbhash,
        frames,
    };
    Thumbnail { bytes, info }
}
