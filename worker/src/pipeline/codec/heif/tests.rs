//! The HEIF codec, on files Debian's `heif-enc` (libheif's own encoder, with x265 and libaom) writes (one-tile grids,
//! and a grid of several put together from its tiles): pixels come
//! back close to what was encoded, alpha and 10-bit samples survive, the file's rotation is applied, ICC profiles
//! are found, and broken files are errors.

use image::{DynamicImage, ImageFormat, RgbaImage};
use thumbq_common::{
    fixtures::{WideGamut, encode, heic_grid, heif_enc, oriented_jpeg},
    image_probe::{self, Probe},
    task::SourceFormat,
};

use super::*;
use crate::pipeline::test_images::{gradient, mean_difference};

fn probe(bytes: &[u8]) -> Probe {
    image_probe::probe(bytes, u64::MAX).expect("a readable HEIF header")
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, PipelineError> {
    Heif.decode(bytes, &probe(bytes), Request { reduction: 1.0, memory_mib: 0, icc: None })
}

#[test]
fn a_heic_decodes_to_the_picture_encoded() {
    let rgb = gradient(96, 64);
    let heic = heif_enc(&encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png), &["-q", "90"]);
    assert_eq!(probe(&heic), Probe { format: SourceFormat::Heic, width: 96, height: 64 });
    let decoded = decode(&heic).unwrap();
    let decoded = decoded.as_rgb8().expect("opaque pixels come back as RGB");
    assert!(mean_difference(decoded.as_raw(), rgb.as_raw()) < 4.0, "lossy, but close");
}

#[test]
fn a_grid_of_six_tiles_decodes_to_the_whole_picture() {
    // As phones write HEIC: a grid of tiles (here 3x2 of 64x48), each its own HEVC picture.
    let rgb = gradient(192, 96);
    let heic = heic_grid(&DynamicImage::ImageRgb8(rgb.clone()), 3, 2);
    assert_eq!(probe(&heic), Probe { format: SourceFormat::Heic, width: 192, height: 96 });
    let decoded = decode(&heic).unwrap();
    let decoded = decoded.as_rgb8().expect("opaque pixels come back as RGB");
    assert_eq!(decoded.dimensions(), (192, 96));
    assert!(mean_difference(decoded.as_raw(), rgb.as_raw()) < 4.0, "every tile in its place");
    // A tile out of place (the last two swapped in the grid's references) is a different picture.
    let swapped = {
        let mut bytes = heic;
        let dimg = bytes.windows(4).position(|w| w == b"dimg").expect("references") + 8;
        bytes[dimg + 8..dimg + 12].copy_from_slice(&[0, 7, 0, 6]);
        bytes
    };
    let decoded = decode(&swapped).unwrap();
    assert!(mean_difference(decoded.as_rgb8().unwrap().as_raw(), rgb.as_raw()) > 4.0);
}

#[test]
fn an_avif_keeps_its_alpha() {
    let rgba = RgbaImage::from_fn(64, 48, |x, y| image::Rgba([200, (y * 5) as u8, 40, (x * 4) as u8]));
    let avif = heif_enc(&encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png), &["-A", "-q", "95"]);
    assert_eq!(probe(&avif).format, SourceFormat::Avif);
    let decoded = decode(&avif).unwrap();
    let decoded = decoded.as_rgba8().expect("alpha kept");
    let alphas = |image: &RgbaImage| image.pixels().map(|p| p[3]).collect::<Vec<_>>();
    assert!(mean_difference(&alphas(decoded), &alphas(&rgba)) < 3.0);
}

#[test]
fn ten_bit_samples_come_back_as_eight() {
    let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(40, 30, |x, _| {
        image::Rgb([(x * 1600) as u16, 30_000, 50_000])
    });
    let heic = heif_enc(&encode(&DynamicImage::ImageRgb16(deep.clone()), ImageFormat::Png), &["-b", "10", "-q", "95"]);
    let decoded = decode(&heic).unwrap();
    let expected = DynamicImage::ImageRgb16(deep).into_rgb8();
    assert!(mean_difference(decoded.as_rgb8().expect("8-bit RGB").as_raw(), expected.as_raw()) < 4.0);
}

/// `heic` with its primary image turned `quarter_turns` anticlockwise: heif-enc 1.15 writes no `irot`, so the
/// 16-byte `pixi` property it gives the primary image (a grid wrapper) becomes a 16-byte `irot`, which leaves every
/// offset in place. Its EXIF orientation stays, to show it is ignored.
fn with_rotation(mut heic: Vec<u8>, quarter_turns: u8) -> Vec<u8> {
    let pixi = heic.windows(8).position(|w| w == b"\0\0\0\x10pixi").expect("heif-enc wrote a pixi property");
    heic[pixi + 4..pixi + 16].copy_from_slice(&[b'i', b'r', b'o', b't', quarter_turns, 0, 0, 0, 0, 0, 0, 0]);
    heic
}

#[test]
fn the_files_own_rotation_is_applied() {
    // Stored 80x40, left half red; turned three quarters anticlockwise (a quarter clockwise), as a phone held
    // upright writes it. Its EXIF says orientation 6 as well, which would turn it again if it were read.
    let heic = with_rotation(heif_enc(&oriented_jpeg(80, 40, 6), &["-q", "90"]), 3);
    assert_eq!((probe(&heic).width, probe(&heic).height), (40, 80), "the probe reads the turn");
    assert_eq!(Heif.header(&heic, SourceFormat::Heic).orientation, Orientation::NoTransforms, "libheif applies it");
    let decoded = decode(&heic).unwrap().into_rgb8();
    assert_eq!(decoded.dimensions(), (40, 80));
    // The stored left half (red) is on top once turned clockwise.
    assert!(decoded.get_pixel(20, 5)[0] > 150 && decoded.get_pixel(20, 75)[2] > 150, "{:?}", decoded.get_pixel(20, 5));
}

#[test]
fn an_embedded_icc_profile_is_found() {
    // From a JPEG: heif-enc 1.15 carries a JPEG's profile over, and not a PNG's.
    let jpeg = WideGamut::DisplayP3.tagged_image(ImageFormat::Jpeg, [200, 40, 40], 32, 32);
    let heic = heif_enc(&jpeg, &["-q", "90"]);
    assert_eq!(Heif.header(&heic, SourceFormat::Heic).icc, Some(WideGamut::DisplayP3.icc()));
}

#[test]
fn broken_files_are_errors() {
    let heic = heif_enc(&encode(&DynamicImage::ImageRgb8(gradient(64, 64)), ImageFormat::Png), &["-q", "50"]);
    let header_only = &heic[..heic.len() * 2 / 3];
    if let Ok(probed) = image_probe::probe(header_only, u64::MAX) {
        let request = Request { reduction: 1.0, memory_mib: 0, icc: None };
        assert!(Heif.decode(header_only, &probed, request).is_err(), "a file cut short");
    }
    let lying = Probe { format: SourceFormat::Heic, width: 32, height: 64 };
    let request = Request { reduction: 1.0, memory_mib: 0, icc: None };
    assert!(Heif.decode(&heic, &lying, request).is_err(), "a size other than the probe's");
}

#[test]
fn a_thumbnail_item_large_enough_is_decoded_instead_of_the_image() {
    let rgb = gradient(512, 256);
    // heif-enc's `-t 64` adds a thumbnail item fitting 64x64: 64x32.
    let heic = heif_enc(&encode(&DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png), &["-q", "90", "-t", "64"]);
    let decode_at = |reduction: f64| {
        Heif.decode(&heic, &probe(&heic), Request { reduction, memory_mib: 0, icc: None }).unwrap().into_rgb8()
    };
    let small = decode_at(8.0);
    assert_eq!(small.dimensions(), (64, 32), "the thumbnail item covers a 64x32 need");
    let expected = DynamicImage::ImageRgb8(rgb).resize_exact(64, 32, image::imageops::FilterType::Triangle).into_rgb8();
    assert!(mean_difference(small.as_raw(), expected.as_raw()) < 6.0, "and shows the same picture");
    assert_eq!(decode_at(4.0).dimensions(), (512, 256), "a 128x64 need is more than it holds");
}

#[test]
fn a_thumbnail_item_rounded_to_even_sides_still_stands_for_the_image() {
    // heif-enc gives a 1920x1280 photo a 320x212 thumbnail (213.3 rounded down to even), and a 480x320 one an
    // 80x52 (53.3): 1.3 pixels off its shape.
    let heic = heif_enc(&encode(&DynamicImage::ImageRgb8(gradient(480, 320)), ImageFormat::Png), &["-t", "80"]);
    let small = Heif.decode(&heic, &probe(&heic), Request { reduction: 6.5, memory_mib: 0, icc: None }).unwrap();
    assert_eq!((small.width(), small.height()), (80, 52), "the thumbnail item, not the image");
}
