//! Step 2, plan: from the header alone, in which orientation each output's box is planned, what part of the source
//! it shows ([`geometry`]), how many times smaller than full size the one decode may be, and what it all will cost in
//! memory ([`memory`], the worker's admission estimate).

pub mod geometry;
pub mod memory;

use image::metadata::Orientation;
use thumbq_common::{image_probe::Probe, task::ResizeArgs};

/// How an image will be decoded for a thumbnail: in which orientation the box is planned, and how many times smaller
/// than full size the decode may be.
#[derive(Clone, Copy)]
pub struct DecodePlan {
    /// The EXIF orientation, applied to the small result when it is finished.
    pub orientation: Orientation,
    /// The box (width, height) in the source's stored orientation.
    pub stored_box: (u32, u32),
    /// The cover crop's focus in the source's stored orientation, as fractions of its sides.
    pub focus: (f64, f64),
    /// The full-size plan, which fixes the thumbnail's size.
    pub full: geometry::Plan,
    /// How many times smaller than full size the decoded image may be (≥ 1).
    reduction: f64,
}

impl DecodePlan {
    fn new(orientation: Orientation, probe: &Probe, args: &ResizeArgs) -> Self {
        // Plan in the source's stored orientation and rotate the small result: for a quarter turn the box turns
        // too, and the focus (given in the image as displayed) is mapped back to where it is stored.
        let turns = matches!(
            orientation,
            Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
        );
        let stored_box = if turns { (args.height, args.width) } else { (args.width, args.height) };
        // Decode no larger than needed: keep at least twice the output's pixels along each side of the crop, so
        // the Lanczos filter still has real detail to work with.
        let focus =
            args.focus.map_or(geometry::CENTRE, |f| stored_point(orientation, (f64::from(f.x), f64::from(f.y))));
        let full = geometry::plan_at(probe.width, probe.height, stored_box.0, stored_box.1, args.fit, focus);
        let reduction =
            (full.crop_width / f64::from(2 * full.width)).min(full.crop_height / f64::from(2 * full.height));
        Self { orientation, stored_box, focus, full, reduction: reduction.max(1.0) }
    }

    /// One plan per output, and the reduction the decode may use: the one the most demanding output allows.
    pub fn all(orientation: Orientation, probe: &Probe, outputs: &[ResizeArgs]) -> (Vec<Self>, f64) {
        let plans: Vec<Self> = outputs.iter().map(|args| Self::new(orientation, probe, args)).collect();
        let reduction = plans.iter().map(|p| p.reduction).fold(f64::INFINITY, f64::min);
        (plans, if reduction.is_finite() { reduction } else { 1.0 })
    }
}

/// Where the point `displayed` (fractions of the displayed image's sides) lies in the image as stored, before
/// `orientation` is applied: the inverse of what `apply_orientation` does to the pixels.
fn stored_point(orientation: Orientation, (x, y): (f64, f64)) -> (f64, f64) {
    match orientation {
        Orientation::NoTransforms => (x, y),
        Orientation::FlipHorizontal => (1.0 - x, y),
        Orientation::FlipVertical => (x, 1.0 - y),
        Orientation::Rotate180 => (1.0 - x, 1.0 - y),
        Orientation::Rotate90 => (y, 1.0 - x),
        Orientation::Rotate270 => (1.0 - y, x),
        Orientation::Rotate90FlipH => (y, x),
        Orientation::Rotate270FlipH => (1.0 - y, 1.0 - x),
    }
}

#[cfg(test)]
mod tests {
    use image::DynamicImage;

    use super::*;

    #[test]
    fn a_displayed_point_maps_back_to_where_the_image_crate_stored_it_in_every_orientation() {
        let (stored_w, stored_h, (sx, sy)) = (40u32, 20u32, (30u32, 5u32));
        for code in 1..=8 {
            let orientation = Orientation::from_exif(code).unwrap();
            let mut image = image::RgbImage::new(stored_w, stored_h);
            image.put_pixel(sx, sy, image::Rgb([255, 255, 255]));
            let mut shown = DynamicImage::ImageRgb8(image);
            shown.apply_orientation(orientation);
            let shown = shown.to_rgb8();
            let (dx, dy, _) = shown.enumerate_pixels().find(|(_, _, p)| p.0[0] == 255).unwrap();
            let fraction = |at: u32, size: u32| (f64::from(at) + 0.5) / f64::from(size);
            let displayed = (fraction(dx, shown.width()), fraction(dy, shown.height()));
            let (x, y) = stored_point(orientation, displayed);
            let expected = (fraction(sx, stored_w), fraction(sy, stored_h));
            assert!(
                (x - expected.0).abs() < 1e-9 && (y - expected.1).abs() < 1e-9,
                "{orientation:?}: {:?} vs {expected:?}",
                (x, y)
            );
        }
    }
}
