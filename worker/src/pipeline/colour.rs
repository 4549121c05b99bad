//! Embedded ICC profiles: an RGB image tagged with another colour space (Display P3 from phones, Adobe RGB from
//! cameras) is converted to sRGB, the space every browser assumes for an untagged image, because thumbnails carry no
//! metadata and so no profile. Converted on each small output, after resampling: a few thousand pixels instead of
//! millions, as libvips' thumbnail does. moxcms is the `image` crate's own colour engine.

use image::{DynamicImage, RgbImage, RgbaImage};
use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};

/// Converts pixels of one source profile to sRGB.
pub struct ToSrgb {
    rgb: Box<Transform8BitExecutor>,
    rgba: Box<Transform8BitExecutor>,
}

impl ToSrgb {
    /// The conversion for an embedded profile; `None` when there is nothing to do or nothing that can be done: no
    /// profile, one that does not parse, sRGB itself, or a non-RGB profile (CMYK and grey images are decoded to
    /// RGB or grey without it).
    pub fn new(icc: Option<&[u8]>) -> Option<Self> {
        let profile = ColorProfile::new_from_slice(icc?).ok()?;
        if profile.color_space != DataColorSpace::Rgb || is_srgb(&profile) {
            return None;
        }
        let srgb = ColorProfile::new_srgb();
        let transform = |layout| profile.create_transform_8bit(layout, &srgb, layout, TransformOptions::default());
        Some(Self { rgb: transform(Layout::Rgb).ok()?, rgba: transform(Layout::Rgba).ok()? })
    }

    /// The image in sRGB. Grey images are left alone: a grey profile changes the tone curve slightly at most.
    pub fn apply(&self, image: DynamicImage) -> DynamicImage {
        let (executor, alpha) = match &image {
            DynamicImage::ImageRgb8(_) => (&self.rgb, false),
            DynamicImage::ImageRgba8(_) => (&self.rgba, true),
            _ => return image,
        };
        let mut converted = vec![0u8; image.as_bytes().len()];
        // A transform fails only on mismatched lengths, which cannot happen here; the pixels stay as they are if so.
        if executor.transform(image.as_bytes(), &mut converted).is_err() {
            return image;
        }
        let (width, height) = (image.width(), image.height());
        let rebuilt = if alpha {
            RgbaImage::from_raw(width, height, converted).map(DynamicImage::ImageRgba8)
        } else {
            RgbImage::from_raw(width, height, converted).map(DynamicImage::ImageRgb8)
        };
        rebuilt.unwrap_or(image)
    }
}

/// Whether a profile is sRGB as far as 8-bit pixels can tell: its colourants are sRGB's (D50-adapted, as ICC
/// profiles store them) within rounding. The tone curves of sRGB-tagged images are sRGB's in practice.
fn is_srgb(profile: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let close = |a: moxcms::Xyzd, b: moxcms::Xyzd| (a.x - b.x).abs() + (a.y - b.y).abs() + (a.z - b.z).abs() < 0.003;
    close(profile.red_colorant, srgb.red_colorant)
        && close(profile.green_colorant, srgb.green_colorant)
        && close(profile.blue_colorant, srgb.blue_colorant)
}

#[cfg(test)]
mod tests {
    use image::ImageFormat;
    use thumbq_common::{
        fixtures::{WideGamut, encode},
        task::{Fit, OutputFormat, ResizeArgs},
    };

    use crate::pipeline::{Limits, make_thumbnail};

    fn centre_pixel(source: &[u8]) -> [u8; 3] {
        let args = ResizeArgs::new(16, 12, Fit::Fill, OutputFormat::Png);
        let thumbnail = make_thumbnail(source, &args, Limits::pixels(1 << 30)).unwrap();
        image::load_from_memory(&thumbnail.bytes).unwrap().to_rgb8().get_pixel(8, 6).0
    }

    fn distance(a: [u8; 3], b: [u8; 3]) -> u8 {
        a.iter().zip(b).map(|(x, y)| x.abs_diff(y)).max().unwrap_or(0)
    }

    #[test]
    fn wide_gamut_colours_land_near_the_reference_srgb_conversion() {
        for space in [WideGamut::DisplayP3, WideGamut::AdobeRgb] {
            for format in [ImageFormat::Jpeg, ImageFormat::Png] {
                for colour in [[200, 100, 50], [120, 190, 120], [70, 90, 200], [128, 128, 128]] {
                    let got = centre_pixel(&space.tagged_image(format, colour, 64, 48));
                    let expected = space.to_srgb(colour);
                    assert!(distance(got, expected) <= 4, "{space:?} {format:?} {colour:?}: {got:?} vs {expected:?}");
                    if [[200, 100, 50], [120, 190, 120]].contains(&colour) {
                        assert!(distance(colour, expected) > 8, "{space:?} {colour:?}: the test colour must move");
                    }
                }
            }
        }
    }

    #[test]
    fn an_untagged_image_keeps_its_colours() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let flat = image::RgbImage::from_pixel(64, 48, image::Rgb([200, 100, 50]));
            let source = encode(&image::DynamicImage::ImageRgb8(flat), format);
            assert!(distance(centre_pixel(&source), [200, 100, 50]) <= 2, "{format:?}");
        }
    }

    #[test]
    fn an_srgb_profile_is_recognised_and_costs_nothing() {
        let srgb = moxcms::ColorProfile::new_srgb().encode().unwrap();
        assert!(super::ToSrgb::new(Some(&srgb)).is_none());
        assert!(super::ToSrgb::new(Some(&WideGamut::DisplayP3.icc())).is_some());
        assert!(super::ToSrgb::new(Some(b"not a profile")).is_none());
        assert!(super::ToSrgb::new(None).is_none());
    }
}
