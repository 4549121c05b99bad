//! The TIFF codec: libtiff's pixels match what was encoded, alpha comes back straight, floating-point samples go
//! to the `image` crate, and broken files are errors.

use image::{DynamicImage, ImageFormat, Rgb32FImage, RgbaImage};
use thumbq_common::{
    fixtures::{encode, sample_image},
    image_probe::{self, Probe},
};

use super::*;

fn probe(bytes: &[u8]) -> Probe {
    image_probe::probe(bytes, u64::MAX).expect("a readable TIFF header")
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, PipelineError> {
    Tiff.decode(bytes, &probe(bytes), Request { reduction: 1.0, memory_mib: 0, icc: None })
}

#[test]
fn an_opaque_tiff_decodes_to_the_pixels_encoded_as_rgb() {
    let tiff = sample_image(ImageFormat::Tiff, 61, 37);
    let decoded = decode(&tiff).unwrap();
    let expected = image::load_from_memory(&tiff).unwrap().into_rgb8();
    assert_eq!(decoded.as_rgb8().expect("opaque pixels come back as RGB"), &expected);
}

#[test]
fn straight_alpha_comes_back_straight_after_libtiff_premultiplies_it() {
    let rgba = RgbaImage::from_fn(40, 20, |x, y| image::Rgba([200, (y * 12) as u8, 40, (x * 6 + 10) as u8]));
    let tiff = one_strip_tiff(40, 20, 4, Some(2), rgba.as_raw(), 0);
    let decoded = decode(&tiff).unwrap();
    let decoded = decoded.as_rgba8().expect("alpha kept");
    for (got, want) in decoded.pixels().zip(rgba.pixels()) {
        assert_eq!(got[3], want[3]);
        for c in 0..3 {
            // Premultiplying to 8 bits loses up to 255 / alpha levels, and alpha here is at least 10.
            let tolerance = 255 / i32::from(want[3]) + 1;
            assert!((i32::from(got[c]) - i32::from(want[c])).abs() <= tolerance, "{got:?} for {want:?}");
        }
    }
}

#[test]
fn alpha_of_unspecified_meaning_is_read_as_straight() {
    let rgba = RgbaImage::from_fn(4, 2, |x, _| image::Rgba([200, 100, 40, (x * 60 + 10) as u8]));
    for extra in [None, Some(0)] {
        let tiff = one_strip_tiff(4, 2, 4, extra, rgba.as_raw(), 0);
        assert_eq!(decode(&tiff).unwrap().as_rgba8(), Some(&rgba), "ExtraSamples {extra:?}");
    }
}

#[test]
fn floating_point_samples_libtiffs_rgba_reader_declines_are_stretched_to_eight_bits() {
    // Red runs from 0 to 1.5 across the image: past 1.0, as measurements do.
    let float = Rgb32FImage::from_fn(16, 8, |x, _| image::Rgb([x as f32 / 10.0, 0.75, 0.0]));
    let tiff = encode(&DynamicImage::ImageRgb32F(float), ImageFormat::Tiff);
    assert!(Opened::open(&tiff, DEFAULT_MAX_ALLOC).unwrap().rgba_ok().is_err(), "libtiff's RGBA reader declines it");
    let decoded = decode(&tiff).unwrap().into_rgb8();
    assert_eq!(decoded.dimensions(), (16, 8));
    // Stretched from the smallest value (0) to the largest (1.5) over every channel.
    assert_eq!(decoded.get_pixel(0, 0).0, [0, 128, 0]);
    assert_eq!(decoded.get_pixel(15, 7).0, [255, 128, 0]);
}

/// A PackBits-compressed TIFF of one strip (never split by libtiff, as uncompressed ones are), `samples` 8-bit
/// samples a pixel (grey, or RGB and alpha with `extra`, the ExtraSamples value), of `pixels`, its last `cut` bytes
/// left out.
fn one_strip_tiff(width: u32, height: u32, samples: u16, extra: Option<u16>, pixels: &[u8], cut: usize) -> Vec<u8> {
    let mut data = Vec::new();
    // PackBits runs end at each row's end, as TIFF requires (libtiff's row reader decodes row by row).
    for run in pixels.chunks(width as usize * usize::from(samples)).flat_map(|row| row.chunks(128)) {
        data.push(run.len() as u8 - 1);
        data.extend_from_slice(run);
    }
    data.truncate(data.len() - cut);
    let photometric = if samples >= 3 { 2 } else { 1 };
    let mut tags: Vec<(u16, u16, u32)> = vec![(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 32773)];
    let entries = 9 + usize::from(extra.is_some());
    tags.extend([(262, 3, photometric), (273, 4, (8 + 2 + entries * 12 + 4) as u32), (277, 3, u32::from(samples))]);
    tags.extend([(278, 4, height), (279, 4, data.len() as u32)]);
    tags.extend(extra.map(|e| (338, 3, u32::from(e))));
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend((tags.len() as u16).to_le_bytes());
    for (tag, kind, value) in tags {
        tiff.extend(tag.to_le_bytes());
        tiff.extend(kind.to_le_bytes());
        // BitsPerSample holds one value for every sample: libtiff takes the first.
        tiff.extend(1u32.to_le_bytes());
        tiff.extend(if kind == 3 { u32::from(value as u16) } else { value }.to_le_bytes());
    }
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(data);
    tiff
}

#[test]
fn a_strip_over_the_memory_cap_is_refused_with_libtiffs_reason() {
    // One strip of 1.2 MB: more than a 1 MiB cap lets libtiff allocate at once.
    let pixels: Vec<u8> = (0..1_200_000).map(|i| (i % 251) as u8).collect();
    let tiff = one_strip_tiff(1200, 1000, 1, None, &pixels, 0);
    let decode = |memory_mib| Tiff.decode(&tiff, &probe(&tiff), Request { reduction: 1.0, memory_mib, icc: None });
    let whole = decode(64).unwrap();
    assert_eq!(whole.as_rgb8().unwrap().get_pixel(1, 0).0, [1, 1, 1]);
    let Err(PipelineError::Decode(reason)) = decode(1) else { panic!("a strip over the cap decoded") };
    assert!(reason.contains("limit"), "{reason}");
}

#[test]
fn the_row_reader_gives_the_pixels_the_rgba_reader_gives() {
    let pixels: Vec<u8> = (0..1_200_000).map(|i| (i % 251) as u8).collect();
    let tiff = one_strip_tiff(1200, 1000, 1, None, &pixels, 0);
    let whole = decode(&tiff).unwrap().to_luma8();
    let rows = by_rows(&tiff, 64 << 20, 1200, 1000).unwrap().to_luma8();
    let first = rows.pixels().zip(whole.pixels()).position(|(a, b)| a != b);
    assert!(
        first.is_none(),
        "rows differ from pixel {first:?}: {:?}",
        first.map(|i| (rows.as_raw()[i], whole.as_raw()[i], pixels[i]))
    );
}

#[test]
fn a_strip_cut_short_is_an_error_with_libtiffs_reason() {
    let pixels: Vec<u8> = (0..1_200_000).map(|i| (i % 251) as u8).collect();
    let cut = one_strip_tiff(1200, 1000, 1, None, &pixels, 600_000);
    let error = Tiff.decode(&cut, &probe(&cut), Request { reduction: 1.0, memory_mib: 64, icc: None });
    let Err(PipelineError::Decode(reason)) = error else { panic!("a cut strip decoded") };
    assert!(reason.contains("Not enough data"), "{reason}");
}

#[test]
fn the_peak_counts_the_raster_and_libtiffs_strip_buffers() {
    let tiff = sample_image(ImageFormat::Tiff, 300, 200);
    let peak = Tiff.decode_peak(&tiff, &probe(&tiff), 1.0);
    assert!(peak >= 300 * 200 * 4, "{peak}");
    assert!(peak <= 300 * 200 * 4 * 3, "{peak}");
}
