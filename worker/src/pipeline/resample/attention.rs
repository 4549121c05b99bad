//! `focus=auto`: where a cover crop should go, chosen by an attention measure in the spirit of libvips'
//! `attention` strategy: edges (detail), saturated colour and skin tones draw the eye, flat or grey areas do not.
//! Scored on a copy of the decoded image at most [`MAP_SIDE`] pixels a side, so it costs little beside the decode;
//! the crop window with the highest total score is found with a summed-area table. Written here because no
//! maintained crate offers a content-aware crop on `image` buffers.

use image::{DynamicImage, imageops::FilterType};

/// The longest side of the score map.
const MAP_SIDE: u32 = 96;

/// The centre, as fractions of `image`'s sides, of the `crop_w`×`crop_h` window (in `image`'s pixels) that holds
/// the most attention.
pub fn focus(image: &DynamicImage, crop_w: f64, crop_h: f64) -> (f64, f64) {
    let (w, h) = (image.width(), image.height());
    let scale = (f64::from(MAP_SIDE) / f64::from(w.max(h))).min(1.0);
    let (mw, mh) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
    let map = image.resize_exact(mw, mh, FilterType::Triangle).to_rgb8();
    let (mwu, mhu) = (mw as usize, mh as usize);
    let luma: Vec<f64> = map
        .pixels()
        .map(|p| 0.299 * f64::from(p.0[0]) + 0.587 * f64::from(p.0[1]) + 0.114 * f64::from(p.0[2]))
        .collect();
    // Summed-area table of the score, one row and column of zeros in front.
    let mut table = vec![0.0; (mwu + 1) * (mhu + 1)];
    for y in 0..mhu {
        let mut row = 0.0;
        for x in 0..mwu {
            let p = map.get_pixel(x as u32, y as u32).0;
            row += score(p, &luma, mwu, mhu, x, y);
            table[(y + 1) * (mwu + 1) + x + 1] = table[y * (mwu + 1) + x + 1] + row;
        }
    }
    let (win_w, win_h) =
        (((crop_w * scale).round() as usize).clamp(1, mwu), ((crop_h * scale).round() as usize).clamp(1, mhu));
    let sum = |x: usize, y: usize| {
        let at = |xx: usize, yy: usize| table[yy * (mwu + 1) + xx];
        at(x + win_w, y + win_h) - at(x, y + win_h) - at(x + win_w, y) + at(x, y)
    };
    // The best window: the highest total, ties (a flat image) going to the window nearest the centre.
    let off_centre = |x: usize, y: usize| {
        (x as f64 - (mwu - win_w) as f64 / 2.0).abs() + (y as f64 - (mhu - win_h) as f64 / 2.0).abs()
    };
    let mut best = (f64::MIN, 0, 0);
    for y in 0..=mhu - win_h {
        for x in 0..=mwu - win_w {
            let total = sum(x, y);
            let tie = (total - best.0).abs() <= 1e-9;
            if total > best.0 + 1e-9 || (tie && off_centre(x, y) < off_centre(best.1, best.2)) {
                best = (total, x, y);
            }
        }
    }
    let centre = |start: usize, window: usize, size: usize| (start as f64 + window as f64 / 2.0) / size as f64;
    (centre(best.1, win_w, mwu), centre(best.2, win_h, mhu))
}

/// How much one pixel draws the eye: edge strength (a Laplacian of luminance), saturation, and closeness to skin
/// tones, each about 0..1, weighted as libvips weighs them (edges and skin above saturation).
fn score(p: [u8; 3], luma: &[f64], w: usize, h: usize, x: usize, y: usize) -> f64 {
    let at = |xx: usize, yy: usize| luma[yy * w + xx];
    let (l, r, u, d) =
        (at(x.saturating_sub(1), y), at((x + 1).min(w - 1), y), at(x, y.saturating_sub(1)), at(x, (y + 1).min(h - 1)));
    let edge = ((4.0 * at(x, y) - l - r - u - d).abs() / 255.0).min(1.0);
    let [r8, g8, b8] = p.map(f64::from);
    let (max, min) = (r8.max(g8).max(b8), r8.min(g8).min(b8));
    let saturation = if max > 0.0 { (max - min) / max } else { 0.0 };
    // Skin: red above green above blue, in the proportions of skin under white light, reasonably bright.
    let skin = if r8 > 95.0 && g8 > 40.0 && b8 > 20.0 && r8 > g8 && g8 > b8 && r8 - b8 > 15.0 && (r8 - g8) > 15.0 {
        1.0
    } else {
        0.0
    };
    2.0 * edge + 0.5 * saturation + 1.5 * skin
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A rectangle: left, top, width, height.
    type Rect = (u32, u32, u32, u32);

    /// A `w`×`h` flat grey image with `subject` painted on `rect`.
    fn scene(w: u32, h: u32, rect: Rect, subject: impl Fn(u32, u32) -> Rgb<u8>) -> DynamicImage {
        let (rx, ry, rw, rh) = rect;
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            if (rx..rx + rw).contains(&x) && (ry..ry + rh).contains(&y) { subject(x, y) } else { Rgb([128, 128, 128]) }
        }))
    }

    /// Whether a crop of `crop_w`×`crop_h` centred on `focus` (clamped like the geometry) holds the rectangle.
    fn holds(image: &DynamicImage, focus: (f64, f64), crop: (f64, f64), rect: Rect) -> bool {
        let (w, h) = (f64::from(image.width()), f64::from(image.height()));
        let left = (focus.0 * w - crop.0 / 2.0).clamp(0.0, w - crop.0);
        let top = (focus.1 * h - crop.1 / 2.0).clamp(0.0, h - crop.1);
        let (rx, ry, rw, rh) = (f64::from(rect.0), f64::from(rect.1), f64::from(rect.2), f64::from(rect.3));
        left <= rx && rx + rw <= left + crop.0 && top <= ry && ry + rh <= top + crop.1
    }

    #[test]
    fn the_crop_finds_an_off_centre_subject_by_its_detail_its_colour_or_its_skin_tone() {
        let checker =
            |x: u32, y: u32| if (x / 4 + y / 4).is_multiple_of(2) { Rgb([20, 20, 20]) } else { Rgb([235, 235, 235]) };
        let cases: [(&str, DynamicImage, Rect); 3] = [
            ("detail at the left", scene(800, 300, (40, 100, 120, 120), checker), (40, 100, 120, 120)),
            (
                "saturated colour at the bottom right",
                scene(600, 600, (440, 420, 100, 100), |_, _| Rgb([30, 200, 40])),
                (440, 420, 100, 100),
            ),
            ("skin at the top", scene(300, 900, (90, 60, 120, 140), |_, _| Rgb([224, 172, 140])), (90, 60, 120, 140)),
        ];
        for (what, image, rect) in cases {
            let side = f64::from(image.width().min(image.height())) * 0.5;
            let crop = (side, side);
            let centre = (0.5, 0.5);
            assert!(!holds(&image, centre, crop, rect), "{what}: the centred crop misses it (test set-up)");
            let found = focus(&image, crop.0, crop.1);
            assert!(holds(&image, found, crop, rect), "{what}: focus {found:?} misses it");
        }
    }

    #[test]
    fn a_flat_image_keeps_the_centre() {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 200, Rgb([90, 90, 90])));
        assert_eq!(focus(&flat, 200.0, 200.0), (0.5, 0.5));
    }
}
