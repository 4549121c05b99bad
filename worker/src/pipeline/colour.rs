//! Embedded ICC profiles: an RGB image tagged with another colour space (Display P3 from phones, Adobe RGB from
//! cameras) is converted to sRGB, the space every browser assumes for an untagged image, because thumbnails carry no
//! metadata and so no profile. Converted on each small output, after resampling: a few thousand pixels instead of
//! millions, as libvips' thumbnail does. A CMYK JPEG's inks are converted through its profile as it is decoded (at
//! the decoded scale), since they cannot be told apart from RGB afterwards. moxcms is the `image` crate's own
//! colour engine.

use image::{DynamicImage, RgbImage, RgbaImage};
use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};

/// Converts pixels of one source profile to sRGB.
pub struct ToSrgb {
    rgb: Box<Transform8BitExecutor>,
    rgba: Box<Transform8BitExecutor>,
}

impl ToSrgb {
    /// The conversion for an embedded profile; `None` when there is nothing to do or nothing that can be done: no
    /// profile, one that does not parse, sRGB itself, or a non-RGB profile (a CMYK one is applied while decoding,
    /// by [`CmykToSrgb`]; grey images keep their tones).
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

/// Converts a CMYK JPEG's inks to sRGB through its embedded CMYK profile (a press or proofing profile, a lookup
/// table), at the decoded scale. Without a profile, a CMYK JPEG is left to the `image` crate's plain formula.
pub struct CmykToSrgb {
    transform: Box<Transform8BitExecutor>,
}

impl CmykToSrgb {
    /// The conversion for an embedded profile, if it is a CMYK one that moxcms can use.
    pub fn new(icc: Option<&[u8]>) -> Option<Self> {
        let profile = ColorProfile::new_from_slice(icc?).ok()?;
        if profile.color_space != DataColorSpace::Cmyk {
            return None;
        }
        let srgb = ColorProfile::new_srgb();
        // moxcms takes four-channel inks in its RGBA layout.
        let transform =
            profile.create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgb, TransformOptions::default()).ok()?;
        Some(Self { transform })
    }

    /// `cmyk` (4 bytes a pixel, `width`×`height`, inverted as Adobe stores it when `inverted`) as sRGB.
    pub fn apply(&self, mut cmyk: Vec<u8>, inverted: bool, width: u32, height: u32) -> Option<RgbImage> {
        if inverted {
            cmyk.iter_mut().for_each(|ink| *ink = 255 - *ink);
        }
        let mut rgb = vec![0u8; cmyk.len() / 4 * 3];
        self.transform.transform(&cmyk, &mut rgb).ok()?;
        RgbImage::from_raw(width, height, rgb)
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

    /// What LittleCMS (`transicc`, liblcms2-utils) makes of `inks` through `icc`, perceptual intent, to sRGB.
    fn littlecms(icc: &std::path::Path, inks: [u8; 4]) -> [u8; 3] {
        use std::io::Write;
        let mut child = std::process::Command::new("transicc")
            .arg("-i")
            .arg(icc)
            .args(["-o", "*sRGB", "-t", "0"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("transicc runs (deploy/native/test-tools.sh installs liblcms2-utils)");
        let percent = inks.map(|ink| format!("{:.4}", f64::from(ink) * 100.0 / 255.0)).join(" ");
        child.stdin.take().unwrap().write_all(format!("{percent}\n").as_bytes()).unwrap();
        let output = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        let value = |channel: &str| {
            let text = output.split(&format!("{channel}=")).nth(1).unwrap().split_whitespace().next().unwrap();
            text.parse::<f64>().unwrap().round().clamp(0.0, 255.0) as u8
        };
        [value("R"), value("G"), value("B")]
    }

    #[test]
    fn a_cmyk_jpeg_is_converted_through_its_profile_near_littlecms() {
        // Ghostscript's default CMYK profile (a lookup-table press profile), from libgs-common.
        let icc_path = std::path::Path::new("/usr/share/color/icc/ghostscript/default_cmyk.icc");
        let icc = std::fs::read(icc_path).expect("libgs-common (deploy/native/test-tools.sh)");
        for inks in [[51, 153, 204, 26], [179, 26, 77, 0], [0, 0, 0, 102], [0, 0, 0, 0]] {
            let jpeg = crate::pipeline::test_images::cmyk_jpeg(inks, 64, 48, Some(&icc));
            let (got, expected) = (centre_pixel(&jpeg), littlecms(icc_path, inks));
            assert!(distance(got, expected) <= 10, "inks {inks:?}: {got:?}, LittleCMS {expected:?}");
            // Without its profile the same file takes the plain formula: a picture, but not these colours.
            let plain = centre_pixel(&crate::pipeline::test_images::cmyk_jpeg(inks, 64, 48, None));
            if inks != [0, 0, 0, 0] {
                assert!(distance(plain, expected) > 10, "inks {inks:?}: the profile must matter ({plain:?})");
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
