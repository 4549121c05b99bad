//! Step 4, resample: each output's crop of the decoded image, resampled to its size with `fast_image_resize`
//! (Lanczos3, alpha premultiplied), in the source's stored orientation. `focus=auto` chooses the cover crop here
//! ([`attention`]), on the decoded pixels.

mod attention;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;
use thumbq_common::task::{Fit, ResizeArgs};

use super::{
    PipelineError,
    plan::{DecodePlan, geometry},
};

/// The point the cover crop of `source` is centred on: the plan's, or with `focus=auto` where the attention
/// measure finds the subject. An animation asks once, on its first frame, so that its crop holds still.
pub fn focus(source: &DynamicImage, args: &ResizeArgs, plan: &DecodePlan) -> (f64, f64) {
    if args.auto_focus && args.fit == Fit::Cover {
        // Scored on the decoded pixels, in the stored orientation the plan uses.
        let (box_w, box_h) = plan.stored_box;
        let centred = geometry::plan(source.width(), source.height(), box_w, box_h, args.fit);
        attention::focus(source, centred.crop_width, centred.crop_height)
    } else {
        plan.focus
    }
}

/// Resamples one output from the decoded `source`, as `plan` planned it.
pub fn resample(source: &DynamicImage, args: &ResizeArgs, plan: DecodePlan) -> Result<DynamicImage, PipelineError> {
    let focus = focus(source, args, &plan);
    let DecodePlan { stored_box: (box_w, box_h), full, .. } = plan;
    // The crop comes from the decoded pixels, the output size from the original: a scaled decode rounds its sides,
    // which must not change the thumbnail's size.
    let plan = geometry::Plan {
        width: full.width,
        height: full.height,
        ..geometry::plan_at(source.width(), source.height(), box_w, box_h, args.fit, focus)
    };

    let mut small = DynamicImage::new(plan.width, plan.height, source.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).crop(
        plan.left,
        plan.top,
        plan.crop_width,
        plan.crop_height,
    );
    Resizer::new().resize(source, &mut small, &options).map_err(|e| PipelineError::Encode(e.to_string()))?;
    Ok(small)
}
