//! Why an image could not be made into a thumbnail: one enum for every step of the pipeline. They say what went
//! wrong; the worker's `error.rs` says what each means for the task.

use thumbq_common::image_probe::ProbeError;

/// Why an image could not be made into a thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The header is not a usable image.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The image data is corrupt or truncated.
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    /// The image alone needs more memory than the worker's whole budget.
    #[error("the image needs about {needed_mib} MiB to decode, over this worker's memory budget of {budget_mib} MiB")]
    OverBudget {
        /// The estimate.
        needed_mib: u64,
        /// `THUMBQ_WORKER_MEMORY_MB`.
        budget_mib: u64,
    },
    /// An animation to keep (`animated=true`) with more frames × pixels than the limit.
    #[error(
        "the animation has {frames} frames of {width}x{height} pixels, {} pixels in all, over the limit of \
         {max_pixels} for animated output; ask without animated=true for its first frame",
        u64::from(*frames) * u64::from(*width) * u64::from(*height)
    )]
    AnimationTooLarge {
        /// Its frames, counted from its structure.
        frames: u32,
        /// Its canvas width.
        width: u32,
        /// Its canvas height.
        height: u32,
        /// `THUMBQ_MAX_ANIMATION_PIXELS`.
        max_pixels: u64,
    },
    /// Resampling or encoding failed.
    #[error("the thumbnail cannot be made: {0}")]
    Encode(String),
    /// The task ran past its time limit and gave up between two steps.
    #[error(
        "time limit: the task ran over this worker's time limit of {} s with {made} of {of} thumbnail(s) made; \
         ask for fewer or smaller sizes, a lower quality, or a faster format than avif",
        limit.as_secs_f64()
    )]
    TimeLimit {
        /// `THUMBQ_TASK_TIME_LIMIT_SECS`.
        limit: std::time::Duration,
        /// Thumbnails finished before it gave up.
        made: usize,
        /// Thumbnails asked for.
        of: usize,
    },
}
