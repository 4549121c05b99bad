//! Where the pixels go: for each fit mode, which part of the source is used and how big the thumbnail is.

use thumbq_common::task::Fit;

/// A resize: the source rectangle to sample and the output size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Left edge of the source rectangle, in source pixels.
    pub left: f64,
    /// Top edge of the source rectangle, in source pixels.
    pub top: f64,
    /// Width of the source rectangle.
    pub crop_width: f64,
    /// Height of the source rectangle.
    pub crop_height: f64,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
}

/// Plans the resize of a `src_w`×`src_h` image into a `width`×`height` box; a cover crop is centred.
pub fn plan(src_w: u32, src_h: u32, width: u32, height: u32, fit: Fit) -> Plan {
    plan_at(src_w, src_h, width, height, fit, CENTRE)
}

/// The middle of an image, as fractions of its sides.
pub const CENTRE: (f64, f64) = (0.5, 0.5);

/// Like [`plan`], with a cover crop centred on `focus` (fractions of the source's sides) as near as the edges allow.
pub fn plan_at(src_w: u32, src_h: u32, width: u32, height: u32, fit: Fit, focus: (f64, f64)) -> Plan {
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let (w, h) = (f64::from(width), f64::from(height));
    let whole = Plan { left: 0.0, top: 0.0, crop_width: sw, crop_height: sh, width, height };
    match fit {
        Fit::Fill => whole,
        Fit::Contain => {
            let scale = (w / sw).min(h / sh);
            let size = |src: f64, bound: u32| ((src * scale).round() as u32).clamp(1, bound);
            Plan { width: size(sw, width), height: size(sh, height), ..whole }
        }
        Fit::Cover => {
            // Scale so the box is covered, then keep the part of the source that fills it around the focus.
            let scale = (w / sw).max(h / sh);
            let (crop_width, crop_height) = ((w / scale).min(sw), (h / scale).min(sh));
            let start = |size: f64, crop: f64, at: f64| (at * size - crop / 2.0).clamp(0.0, size - crop);
            let (left, top) = (start(sw, crop_width, focus.0), start(sh, crop_height, focus.1));
            Plan { left, top, crop_width, crop_height, ..whole }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_stretches_the_whole_image_to_the_box() {
        let p = plan(400, 100, 100, 100, Fit::Fill);
        assert_eq!((p.width, p.height), (100, 100));
        assert_eq!((p.left, p.top, p.crop_width, p.crop_height), (0.0, 0.0, 400.0, 100.0));
    }

    #[test]
    fn contain_keeps_the_aspect_ratio_inside_the_box() {
        let wide = plan(400, 100, 100, 100, Fit::Contain);
        assert_eq!((wide.width, wide.height), (100, 25));
        assert_eq!((wide.crop_width, wide.crop_height), (400.0, 100.0));
        let tall = plan(300, 900, 100, 100, Fit::Contain);
        assert_eq!((tall.width, tall.height), (33, 100));
        let sliver = plan(10_000, 1, 100, 100, Fit::Contain);
        assert_eq!((sliver.width, sliver.height), (100, 1), "never a zero-sized side");
        let small = plan(20, 10, 100, 100, Fit::Contain);
        assert_eq!((small.width, small.height), (100, 50), "small images are scaled up to the box");
    }

    #[test]
    fn cover_crops_the_centre_to_the_box_ratio() {
        let wide = plan(400, 100, 100, 100, Fit::Cover);
        assert_eq!((wide.width, wide.height), (100, 100));
        assert_eq!((wide.left, wide.top, wide.crop_width, wide.crop_height), (150.0, 0.0, 100.0, 100.0));
        let tall = plan(200, 600, 100, 50, Fit::Cover);
        assert_eq!((tall.width, tall.height), (100, 50));
        assert_eq!((tall.left, tall.top, tall.crop_width, tall.crop_height), (0.0, 250.0, 200.0, 100.0));
    }

    #[test]
    fn a_focus_moves_the_cover_crop_as_far_as_the_edges_allow() {
        let right = plan_at(400, 100, 100, 100, Fit::Cover, (0.8, 0.5));
        assert_eq!((right.left, right.top, right.crop_width), (270.0, 0.0, 100.0));
        let edge = plan_at(400, 100, 100, 100, Fit::Cover, (1.0, 0.0));
        assert_eq!((edge.left, edge.top), (300.0, 0.0), "clamped inside the image");
        let top = plan_at(200, 600, 100, 50, Fit::Cover, (0.5, 0.0));
        assert_eq!((top.left, top.top), (0.0, 0.0));
        assert_eq!(plan_at(400, 100, 100, 100, Fit::Cover, CENTRE), plan(400, 100, 100, 100, Fit::Cover));
    }

    #[test]
    fn same_ratio_uses_the_whole_image_in_every_mode() {
        for fit in [Fit::Cover, Fit::Contain, Fit::Fill] {
            let p = plan(1600, 1200, 400, 300, fit);
            assert_eq!(
                (p.left, p.top, p.crop_width, p.crop_height, p.width, p.height),
                (0.0, 0.0, 1600.0, 1200.0, 400, 300)
            );
        }
    }
}
