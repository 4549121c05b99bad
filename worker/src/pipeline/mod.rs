//! Making a thumbnail: bytes in, bytes out, no I/O. Deterministic, so every failure here is permanent; so is the one
//! that is not, the time limit ([`Deadline`]): the same work would run as long again.
//!
//! The steps, each a module visited once, in this order:
//! 1. `probe`: format and size from the header (an over-limit image is refused before any pixel is allocated),
//!    the codec, the EXIF orientation and ICC profile;
//! 2. `plan`: each output's crop and size, the one reduction the decode may use, the memory it will take;
//! 3. `codec`: one decode, by the source format's codec, shrinking while it decodes where the codec can;
//! 4. `resample`: each output's crop resampled with `fast_image_resize` (Lanczos3, alpha premultiplied);
//! 5. `colour`: the small output converted from its embedded profile to sRGB;
//! 6. `finish`: turned to the EXIF orientation, its placeholder, encoded.

mod animation;
mod codec;
mod colour;
mod deadline;
mod error;
mod finish;
#[cfg(test)]
mod fuzz;
mod plan;
mod probe;
// PSNR against a reference: for the tests and `make bench`, not the worker.
#[cfg(any(test, feature = "bench"))]
pub mod quality;
mod resample;
#[cfg(test)]
mod test_images;
#[cfg(test)]
mod tests;

// The PDF renderer's process: the binary's `render-pdf` command serves it, harnesses name the binary that does.
pub use codec::pdf::renderer as pdf_renderer;
pub use deadline::Deadline;
pub use error::PipelineError;
// `make bench` times the encoders alone.
#[cfg(feature = "bench")]
pub use finish::encode::{AVIF_SPEED, encode};
use plan::DecodePlan;
use probe::Source;
use thumbq_common::{
    image_probe,
    task::{ImageInfo, ResizeArgs},
};

/// A finished thumbnail.
#[derive(Debug)]
pub struct Thumbnail {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its format, size and length.
    pub info: ImageInfo,
}

/// What making one thumbnail may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Images with more pixels are refused from their header (`THUMBQ_MAX_PIXELS`).
    pub max_pixels: u64,
    /// Animations to keep whose frames × pixels are more are refused from their structure
    /// (`THUMBQ_MAX_ANIMATION_PIXELS`).
    pub max_animation_pixels: u64,
    /// libjpeg-turbo's cap on its intermediate buffers, in MiB (0: no cap): the backstop behind the worker's
    /// admission estimate, which it sets to the task's admitted share.
    pub decoder_memory_mib: u32,
    /// When the task must give up (`THUMBQ_TASK_TIME_LIMIT_SECS`); `None`: never.
    pub deadline: Option<Deadline>,
}

impl Limits {
    /// A pixel limit alone (animations: 20 times as many), for callers with no memory budget nor time limit
    /// (benchmarks, tests).
    pub const fn pixels(max_pixels: u64) -> Self {
        Self { max_pixels, max_animation_pixels: max_pixels.saturating_mul(20), decoder_memory_mib: 0, deadline: None }
    }

    /// Fails once the deadline, if any, has passed, with `made` of `of` thumbnails made.
    fn check_time(&self, made: usize, of: usize) -> Result<(), PipelineError> {
        self.deadline.map_or(Ok(()), |deadline| deadline.check(made, of))
    }
}

/// The most memory making these thumbnails will need, in bytes, estimated from the header alone (see
/// `plan/memory.rs`): the decode, every encoded output kept until stored, and the largest output's resampling and
/// encoding buffers; for an animation to keep, its frames (`animation.rs`). Refuses what `limits` refuse from the
/// header or the animation's structure, so that a task fails before it waits for memory it would not use.
pub fn estimate_peak(bytes: &[u8], outputs: &[ResizeArgs], limits: &Limits) -> Result<u64, PipelineError> {
    let probe = image_probe::probe(bytes, limits.max_pixels)?;
    image_probe::without_panics(|| {
        let source = Source::new(bytes, probe)?;
        let (plans, reduction) = DecodePlan::all(source.header.orientation, &source.probe, outputs);
        if let Some(kept) = animation::wanted(bytes, source.probe.format, outputs) {
            animation::check(kept, &source.probe, limits.max_animation_pixels)?;
            return Ok(animation::peak(bytes, &source.probe, (&plans, reduction), outputs, kept));
        }
        Ok(plan::memory::task_peak(bytes, &source.probe, &plans, reduction, outputs))
    })
    .map_err(PipelineError::Decode)?
}

/// Makes the thumbnail `args` asks for from the encoded image `bytes`, within `limits`.
pub fn make_thumbnail(bytes: &[u8], args: &ResizeArgs, limits: Limits) -> Result<Thumbnail, PipelineError> {
    let mut thumbnails = make_thumbnails(bytes, std::slice::from_ref(args), limits)?;
    Ok(thumbnails.remove(0))
}

/// Makes one thumbnail per entry of `outputs` (renditions) from one decode of `bytes`, at the scale the most
/// demanding one needs. Only the first carries a ThumbHash: they all show the same image. A panic in a decoder is
/// a decode error of this image (permanent), not a crash of the task.
pub fn make_thumbnails(bytes: &[u8], outputs: &[ResizeArgs], limits: Limits) -> Result<Vec<Thumbnail>, PipelineError> {
    image_probe::without_panics(|| make(bytes, outputs, limits)).map_err(PipelineError::Decode)?
}

/// The steps, in order; the deadline is checked between them.
fn make(bytes: &[u8], outputs: &[ResizeArgs], limits: Limits) -> Result<Vec<Thumbnail>, PipelineError> {
    let source = Source::read(bytes, limits.max_pixels)?;
    if let Some(kept) = animation::wanted(bytes, source.probe.format, outputs) {
        animation::check(kept, &source.probe, limits.max_animation_pixels)?;
        return animation::make(&source, outputs, limits, kept);
    }
    let icc = source.header.icc.as_deref();
    let (plans, reduction) = DecodePlan::all(source.header.orientation, &source.probe, outputs);
    let request = codec::Request { reduction, memory_mib: limits.decoder_memory_mib, icc };
    let decoded = tracing::info_span!("decode").in_scope(|| source.decode(request))?;
    let to_srgb = colour::ToSrgb::new(icc);
    let of = outputs.len();
    limits.check_time(0, of)?;
    let mut decoded = Some(decoded);
    let mut thumbnails = Vec::with_capacity(of);
    for (i, (args, plan)) in outputs.iter().zip(plans).enumerate() {
        if i > 0 {
            // Not after the last encode: by then the work is done, and giving it up would waste it.
            limits.check_time(i, of)?;
        }
        let decoded_image = decoded.as_ref().expect("kept until the last resample");
        let mut small = tracing::info_span!("resize").in_scope(|| resample::resample(decoded_image, args, plan))?;
        limits.check_time(i, of)?;
        if let Some(to_srgb) = &to_srgb {
            small = to_srgb.apply(small);
        }
        if i + 1 == outputs.len() {
            // Free the decoded image before the last encode: it is most of the task's memory.
            decoded = None;
        }
        let encoded = tracing::info_span!("encode").in_scope(|| finish::finish(small, plan.orientation, args, i == 0));
        thumbnails.push(encoded?);
    }
    drop(decoded);
    Ok(thumbnails)
}
