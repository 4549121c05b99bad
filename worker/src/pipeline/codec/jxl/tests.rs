//! The JPEG XL codec, on files Debian's `cjxl` (libjxl 0.7) writes: pixels come back close to what was encoded
//! (exact when lossless), alpha and grey survive, wide-gamut colour is carried to sRGB, and broken files are errors.

use image::{DynamicImage, GenericImageView, GrayImage, ImageFormat, RgbaImage};
use thumbq_common::{
    fixtures::{WideGamut, cjxl, encode, oriented_jpeg},
    image_probe::{self, Probe},
    task::{Fit, OutputFormat, ResizeArgs, SourceFormat},
};

use super::*;
use crate::pipeline::test_images::{gradient, mean_difference};
use crate::pipeline::{Limits, make_thumbnail};

fn probe(bytes: &[u8]) -> Probe {
    image_probe::probe(bytes, u64::MAX).expect("a readable JPEG XL header")
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, PipelineError> {
    Jxl.decode(bytes, &probe(bytes), Request { reduction: 1.0, memory_mib: 0, icc: None })
}

#[test]
fn a_lossy_jpeg_xl_decodes_to_the_picture_encoded() {
    let rgb = gradient(96, 64);
    let jxl = cjxl(&encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png), &["-d", "1"]);
    assert_eq!(probe(&jxl), Probe { format: SourceFormat::Jxl, width: 96, height: 64 });
    let decoded = decode(&jxl).unwrap();
    assert!(mean_difference(decoded.as_rgb8().expect("RGB").as_raw(), rgb.as_raw()) < 4.0);
}

#[test]
fn lossless_alpha_and_grey_come_back_exactly() {
    let rgba = RgbaImage::from_fn(33, 17, |x, y| image::Rgba([200, (y * 12) as u8, 40, (x * 7) as u8]));
    let jxl = cjxl(&encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png), &["-d", "0"]);
    assert_eq!(decode(&jxl).unwrap().as_rgba8(), Some(&rgba));
    let grey = GrayImage::from_fn(20, 10, |x, y| image::Luma([(x * 10 + y) as u8]));
    let jxl = cjxl(&encode(&DynamicImage::ImageLuma8(grey.clone()), ImageFormat::Png), &["-d", "0"]);
    assert_eq!(decode(&jxl).unwrap().as_luma8(), Some(&grey));
}

#[test]
fn a_wide_gamut_jpeg_xl_becomes_the_same_colour_in_srgb() {
    let colour = [200, 40, 40];
    let png = WideGamut::DisplayP3.tagged_image(ImageFormat::Png, colour, 64, 64);
    // cjxl 0.7 reads no profile from a PNG: it is given the profile's file.
    let icc = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(icc.path(), WideGamut::DisplayP3.icc()).unwrap();
    let jxl = cjxl(&png, &["-d", "1", "-x", &format!("icc_pathname={}", icc.path().display())]);
    assert!(Jxl.header(&jxl, SourceFormat::Jxl).icc.is_some(), "Display P3 is not sRGB");
    let args = ResizeArgs::new(16, 16, Fit::Cover, OutputFormat::Png);
    let thumbnail = make_thumbnail(&jxl, &args, Limits::pixels(u64::MAX)).unwrap();
    let pixel = image::load_from_memory(&thumbnail.bytes).unwrap().to_rgb8().get_pixel(8, 8).0;
    let want = WideGamut::DisplayP3.to_srgb(colour);
    assert!(pixel.iter().zip(want).all(|(got, want)| got.abs_diff(want) <= 3), "{pixel:?} for {want:?}");
    let srgb = cjxl(&encode(&DynamicImage::ImageRgb8(gradient(8, 8)), ImageFormat::Png), &["-d", "0"]);
    assert_eq!(Jxl.header(&srgb, SourceFormat::Jxl).icc, None, "sRGB needs no conversion");
}

#[test]
fn a_recompressed_jpeg_in_its_container_is_turned_by_its_orientation() {
    // cjxl recompresses a JPEG losslessly into the container (with its reconstruction data) and carries the EXIF
    // orientation 6 (turn 90° clockwise) into the codestream. Stored 80x40, left half red.
    let jxl = cjxl(&oriented_jpeg(80, 40, 6), &[]);
    assert!(jxl.starts_with(b"\0\0\0\x0CJXL "), "the container");
    assert_eq!((probe(&jxl).width, probe(&jxl).height), (40, 80), "the probe reads the turn");
    let decoded = decode(&jxl).unwrap().into_rgb8();
    assert_eq!(decoded.dimensions(), (40, 80));
    assert!(decoded.get_pixel(20, 5)[0] > 150 && decoded.get_pixel(20, 75)[2] > 150, "{:?}", decoded.get_pixel(20, 5));
}

#[test]
fn broken_files_are_errors() {
    let jxl = cjxl(&encode(&DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Png), &["-d", "2"]);
    let cut = &jxl[..jxl.len() / 2];
    let request = Request { reduction: 1.0, memory_mib: 0, icc: None };
    if let Ok(probed) = image_probe::probe(cut, u64::MAX) {
        assert!(Jxl.decode(cut, &probed, request).is_err(), "a file cut short");
    }
    let lying = Probe { format: SourceFormat::Jxl, width: 32, height: 64 };
    assert!(Jxl.decode(&jxl, &lying, request).is_err(), "a size other than the probe's");
    let capped = Request { memory_mib: 1, ..request };
    let big = cjxl(&encode(&DynamicImage::ImageRgb8(gradient(1024, 1024)), ImageFormat::Png), &["-d", "2"]);
    assert!(Jxl.decode(&big, &probe(&big), capped).is_err(), "over the decoder's memory cap");
}

/// Each 8x8 block's mean: what the 1/8 image stands for.
fn eighth_by_means(full: &image::RgbImage) -> image::RgbImage {
    let (width, height) = (full.width().div_ceil(8), full.height().div_ceil(8));
    image::RgbImage::from_fn(width, height, |bx, by| {
        let mut sums = [0u32; 3];
        let mut count = 0;
        for y in by * 8..(by * 8 + 8).min(full.height()) {
            for x in bx * 8..(bx * 8 + 8).min(full.width()) {
                sums.iter_mut().zip(full.get_pixel(x, y).0).for_each(|(s, v)| *s += u32::from(v));
                count += 1;
            }
        }
        image::Rgb(sums.map(|s| ((s + count / 2) / count) as u8))
    })
}

#[test]
fn a_lossy_photo_shrunk_enough_is_made_from_its_lf_image_as_true_as_the_full_render() {
    // Wider than 2,048 pixels: two LF groups side by side, and a ragged last block column; gradients, and squares
    // with sharp edges.
    let rgb = image::RgbImage::from_fn(2100, 300, |x, y| {
        let ripple = ((x / 64 + y / 64) % 2 * 60) as u8;
        image::Rgb([(x * 255 / 2100) as u8, ripple + (y * 100 / 300) as u8, 180 - ripple])
    });
    let source = eighth_by_means(&rgb);
    let png = encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Png);
    let jxl = cjxl(&png, &["-d", "1"]);
    let request = |reduction| Request { reduction, memory_mib: 0, icc: None };
    let full = Jxl.decode(&jxl, &probe(&jxl), request(1.0)).unwrap().into_rgb8();
    let eighth = Jxl.decode(&jxl, &probe(&jxl), request(LF_MIN_REDUCTION)).unwrap().into_rgb8();
    assert_eq!(eighth.dimensions(), (263, 38));
    // Against the source's 8x8 means, the LF image is within a level and a half (0.99 measured; the full render's
    // means 0.40: the encoder sharpens before its transform for the decoder's blur after it, and the LF image
    // keeps that sharpening at the squares' edges).
    let (lf, whole) = (
        mean_difference(eighth.as_raw(), source.as_raw()),
        mean_difference(eighth_by_means(&full).as_raw(), source.as_raw()),
    );
    assert!(lf < 1.5 && whole < 1.0, "the LF image is {lf} levels from the source, the full render {whole}");
    let short = Jxl.decode(&jxl, &probe(&jxl), request(LF_MIN_REDUCTION - 0.1)).unwrap();
    assert_eq!(short.dimensions(), (2100, 300), "a smaller reduction: rendered whole");
    // Through the pipeline (a reduction of 6.6): the thumbnail is close to the source PNG's. Measured: 3.0 levels,
    // against 0.3 for the full render's, all of it at the squares' edges: a box by 8 then Lanczos by 1.6 is not one
    // Lanczos by 13 there (without the squares, 0.47 against 0.08).
    let args = ResizeArgs::new(160, 20, Fit::Fill, OutputFormat::Png);
    let thumbnail = |bytes: &[u8]| {
        let made = make_thumbnail(bytes, &args, Limits::pixels(u64::MAX)).unwrap();
        image::load_from_memory(&made.bytes).unwrap().into_rgb8()
    };
    let rendered = encode(&DynamicImage::ImageRgb8(full), ImageFormat::Png);
    let (lf, whole) = (
        mean_difference(thumbnail(&jxl).as_raw(), thumbnail(&png).as_raw()),
        mean_difference(thumbnail(&rendered).as_raw(), thumbnail(&png).as_raw()),
    );
    assert!(lf < 4.0 && whole < 1.0, "the thumbnail is {lf} levels from the source's ({whole} from the full render)");
}

#[test]
fn what_has_no_plain_lf_image_is_rendered_whole_at_any_reduction() {
    let request = Request { reduction: 16.0, memory_mib: 0, icc: None };
    let png = |image| encode(&image, ImageFormat::Png);
    let lossless = cjxl(&png(DynamicImage::ImageRgb8(gradient(300, 200))), &["-d", "0"]);
    let alpha = cjxl(&png(DynamicImage::ImageRgba8(RgbaImage::new(300, 200))), &["-d", "1"]);
    let recompressed = cjxl(&oriented_jpeg(320, 160, 1), &[]);
    for (name, jxl, size) in
        [("lossless", lossless, (300, 200)), ("alpha", alpha, (300, 200)), ("JPEG", recompressed, (320, 160))]
    {
        assert_eq!(Jxl.decode(&jxl, &probe(&jxl), request).unwrap().dimensions(), size, "{name}");
    }
    let grey = cjxl(
        &png(DynamicImage::ImageLuma8(GrayImage::from_fn(400, 160, |x, _| image::Luma([(x / 2) as u8])))),
        &["-d", "1"],
    );
    let decoded = Jxl.decode(&grey, &probe(&grey), request).unwrap();
    assert_eq!((decoded.dimensions(), decoded.color()), ((50, 20), image::ColorType::L8), "a grey photo's LF is grey");
}
