//! The pipeline end to end, bytes in, thumbnails out: every format, fit modes, renditions, transparency, EXIF
//! orientation, refusals, and the admission estimate against libjpeg-turbo's memory cap.

use super::*;
use image::{DynamicImage, ImageFormat};
use thumbq_common::{
    fixtures::{oriented_jpeg, sample_image, transparent_png},
    image_probe::ProbeError,
    task::{Fit, Focus, OutputFormat},
};
use turbojpeg::Subsamp;

fn args(width: u32, height: u32, fit: Fit, format: OutputFormat) -> ResizeArgs {
    ResizeArgs::new(width, height, fit, format)
}

fn decoded(thumbnail: &Thumbnail) -> DynamicImage {
    quality::decode(&thumbnail.bytes)
}

#[test]
fn a_focused_cover_crop_keeps_an_off_centre_subject_that_the_centred_crop_loses() {
    // A red square near the right edge of a wide white image.
    let image = image::RgbImage::from_fn(800, 200, |x, y| {
        if (660..740).contains(&x) && (60..140).contains(&y) {
            image::Rgb([220, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let bytes = thumbq_common::fixtures::encode(&DynamicImage::ImageRgb8(image), ImageFormat::Png);
    let red_share = |focus: Option<Focus>| {
        let args = ResizeArgs { focus, ..args(100, 100, Fit::Cover, OutputFormat::Png) };
        let thumbnail = decoded(&make_thumbnail(&bytes, &args, Limits::pixels(1 << 30)).unwrap()).to_rgb8();
        thumbnail.pixels().filter(|p| p.0[0] > 150 && p.0[1] < 100).count() as f64 / 10_000.0
    };
    assert_eq!(red_share(None), 0.0, "the centred crop misses the subject");
    let focused = red_share(Some(Focus { x: 0.875, y: 0.5 }));
    // The crop is 200×200 source pixels, so the 80-pixel square is 40×40 of the 100×100 thumbnail: 0.16.
    assert!((0.14..0.18).contains(&focused), "the focused crop holds the whole square: {focused}");
}

#[test]
fn every_accepted_format_becomes_a_thumbnail_of_the_requested_size() {
    let formats =
        [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif, ImageFormat::Bmp, ImageFormat::Tiff];
    for format in formats {
        let source = sample_image(format, 320, 200);
        for output in OutputFormat::ALL {
            let thumb = make_thumbnail(&source, &args(100, 100, Fit::Cover, output), Limits::pixels(1 << 30))
                .unwrap_or_else(|e| panic!("{format:?} -> {output:?}: {e}"));
            let image = decoded(&thumb);
            assert_eq!((image.width(), image.height()), (100, 100), "{format:?} -> {output:?}");
            assert_eq!(image::guess_format(&thumb.bytes).unwrap(), output.image_format());
            assert_eq!((thumb.info.width, thumb.info.height, thumb.info.bytes), (100, 100, thumb.bytes.len() as u64));
        }
    }
}

#[test]
fn renditions_come_from_one_decode_at_the_scale_the_largest_needs() {
    let source = include_bytes!("../../../assets/example.jpg");
    let small = args(100, 100, Fit::Cover, OutputFormat::Png);
    let large = args(600, 400, Fit::Contain, OutputFormat::Png);
    let limits = Limits::pixels(1 << 30);
    let both = make_thumbnails(source, &[small, large], limits).unwrap();
    let (alone_small, alone_large) =
        (make_thumbnail(source, &small, limits).unwrap(), make_thumbnail(source, &large, limits).unwrap());
    // The largest rendition decides the decode's scale, so it is exactly what it is when made alone ...
    assert_eq!(both[1].bytes, alone_large.bytes);
    // ... and the small one, resampled from a larger decode, is at least as good as alone.
    let reference = quality::reference(source, &small);
    let psnr = |t: &Thumbnail| quality::psnr(&reference, &quality::flattened(&t.bytes));
    assert!(psnr(&both[0]) >= psnr(&alone_small) - 0.1, "{} vs {}", psnr(&both[0]), psnr(&alone_small));
    assert_eq!((both[0].info.width, both[1].info.width), (100, 600));
    assert!(both[0].info.thumbhash.is_some() && both[1].info.thumbhash.is_none(), "one placeholder per task");
    // One decode's memory and every output's, not one decode per rendition.
    let peak = estimate_peak(source, &[small, large], &Limits::pixels(1 << 30)).unwrap();
    let peaks = estimate_peak(source, &[small], &Limits::pixels(1 << 30)).unwrap()
        + estimate_peak(source, &[large], &Limits::pixels(1 << 30)).unwrap();
    assert!(peak < peaks, "{peak} vs {peaks}");
}

#[test]
fn an_avif_output_counts_its_encoders_memory() {
    let source = include_bytes!("../../../assets/example.jpg");
    let jpeg = args(1280, 1280, Fit::Contain, OutputFormat::Jpeg);
    let avif = ResizeArgs { format: OutputFormat::Avif, ..jpeg };
    let peak = |args: ResizeArgs| estimate_peak(source, &[args], &Limits::pixels(1 << 30)).unwrap();
    // rav1e took 37 MB more than libjpeg-turbo for this 1280x800 output (peak resident, `make bench` probe).
    assert!(peak(avif) >= peak(jpeg) + (37 << 20), "{} vs {}", peak(avif), peak(jpeg));
}

#[test]
fn fit_modes_give_their_sizes() {
    let source = sample_image(ImageFormat::Png, 400, 100);
    let size = |fit| {
        let image = decoded(
            &make_thumbnail(&source, &args(100, 100, fit, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
        );
        (image.width(), image.height())
    };
    assert_eq!(size(Fit::Cover), (100, 100));
    assert_eq!(size(Fit::Contain), (100, 25));
    assert_eq!(size(Fit::Fill), (100, 100));
}

#[test]
fn transparency_is_kept_in_png_and_flattened_in_jpeg() {
    let source = transparent_png(64, 64);
    let png = decoded(
        &make_thumbnail(&source, &args(32, 32, Fit::Fill, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
    );
    assert!(png.color().has_alpha());
    assert_eq!(png.to_rgba8().get_pixel(2, 16).0[3], 0, "the transparent half stays transparent");
    let jpeg = decoded(
        &make_thumbnail(&source, &args(32, 32, Fit::Fill, OutputFormat::Jpeg), Limits::pixels(1 << 30)).unwrap(),
    );
    let [r, g, b] = jpeg.to_rgb8().get_pixel(2, 16).0;
    assert!(r > 240 && g > 240 && b > 240, "transparent pixels are laid over white, got {r},{g},{b}");
}

#[test]
fn exif_orientation_is_applied_and_the_box_turns_with_it() {
    // Stored 200x100, tagged "rotate 90° clockwise": shown 100x200 with the red half on top.
    let source = oriented_jpeg(200, 100, 6);
    let contain = decoded(
        &make_thumbnail(&source, &args(100, 100, Fit::Contain, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
    );
    assert_eq!((contain.width(), contain.height()), (50, 100));
    let [r, _, b] = contain.to_rgb8().get_pixel(25, 10).0;
    assert!(r > 150 && b < 80, "top is red, got {r},{b}");
    let [r, _, b] = contain.to_rgb8().get_pixel(25, 90).0;
    assert!(b > 150 && r < 80, "bottom is blue, got {r},{b}");
    let cover = decoded(
        &make_thumbnail(&source, &args(60, 30, Fit::Cover, OutputFormat::Png), Limits::pixels(1 << 30)).unwrap(),
    );
    assert_eq!((cover.width(), cover.height()), (60, 30), "cover gives the box asked for, in display orientation");
}

#[test]
fn a_truncated_jpeg_is_a_decode_error() {
    let truncated = thumbq_common::fixtures::truncated_jpeg(640, 480);
    let err = make_thumbnail(&truncated, &args(100, 100, Fit::Cover, OutputFormat::Png), Limits::pixels(1 << 30))
        .unwrap_err();
    assert!(matches!(err, PipelineError::Decode(_)), "{err}");
}

#[test]
fn an_image_over_the_pixel_limit_is_refused_before_decoding() {
    let source = sample_image(ImageFormat::Png, 100, 100);
    let err = make_thumbnail(&source, &args(10, 10, Fit::Cover, OutputFormat::Png), Limits::pixels(9_999)).unwrap_err();
    assert!(matches!(err, PipelineError::Probe(ProbeError::TooLarge { .. })), "{err}");
}

#[test]
fn the_admission_estimate_leaves_libjpeg_turbo_room_to_decode() {
    // The estimate is the decoder's memory cap in the worker: it must never refuse a good file.
    for (width, height, subsamp) in
        [(1999, 1001, Subsamp::None), (1001, 1999, Subsamp::Sub2x2), (1203, 777, Subsamp::Sub2x1)]
    {
        let source = test_images::progressive_jpeg(width, height, subsamp);
        for side in [100, 400, 1000] {
            let args = args(side, side, Fit::Cover, OutputFormat::Jpeg);
            let mib = estimate_peak(&source, std::slice::from_ref(&args), &Limits::pixels(1 << 30))
                .unwrap()
                .div_ceil(1 << 20);
            let limits = Limits { decoder_memory_mib: u32::try_from(mib).unwrap(), ..Limits::pixels(1 << 30) };
            make_thumbnail(&source, &args, limits)
                .unwrap_or_else(|e| panic!("{width}x{height} {subsamp:?} for {side}: {mib} MiB: {e}"));
        }
    }
}
