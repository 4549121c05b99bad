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

/// Plans the resize of a `src_w`×`src_h` image into a `width`×`height` box.
pub fn plan(src_w: u32, src_h: u32, width: u32, height: u32, fit: Fit) -> Plan {
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
            // Scale so the box is covered, then keep the centred part of the source that fills it.
            let scale = (w / sw).max(h / sh);
            let (crop_width, crop_height) = ((w / scale).min(sw), (h / scale).min(sh));
            Plan { left: (sw - crop_width) / 2.0, top: (sh - crop_height) / 2.0, crop_width, crop_height, ..whole }
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
