//! Step 6, finish: the small image turned to its EXIF orientation (after resampling, so a quarter turn moves a
//! thumbnail's pixels, not a photo's), its placeholder, and its encoding in the format asked for.

pub mod encode;
mod placeholder;
pub mod webp;

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
    let info = ImageInfo { format: args.format.name().to_owned(), width, height, bytes: bytes.len() as u64, thumbhash };
    Ok(Thumbnail { bytes, info })
}
