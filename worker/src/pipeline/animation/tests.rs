//! Animations kept, from files FFmpeg wrote (alternating green and red frames at 10 a second), read back by the
//! `image` crate's decoders (not the encoders that wrote them): frames, order, delays, loop count and size.

use std::io::Cursor;

use image::{AnimationDecoder, codecs::gif::GifDecoder, codecs::webp::WebPDecoder};
use thumbq_common::{
    fixtures::{animated_gif, animated_webp, sample_image},
    image_probe,
    task::{Fit, OutputFormat, ResizeArgs, SourceFormat},
};

use crate::pipeline::{Limits, PipelineError, estimate_peak, make_thumbnail, make_thumbnails};

fn animated(width: u32, height: u32, format: OutputFormat) -> ResizeArgs {
    ResizeArgs { animated: true, ..ResizeArgs::new(width, height, Fit::Cover, format) }
}

/// Each frame of an animated WebP or GIF: its size, whether it is green (else red), and its delay in ms.
fn frames(bytes: &[u8]) -> Vec<((u32, u32), bool, u32)> {
    let frames = if bytes.starts_with(b"GIF") {
        GifDecoder::new(Cursor::new(bytes)).unwrap().into_frames().collect_frames()
    } else {
        WebPDecoder::new(Cursor::new(bytes)).unwrap().into_frames().collect_frames()
    };
    frames
        .unwrap()
        .into_iter()
        .map(|frame| {
            let (numerator, denominator) = frame.delay().numer_denom_ms();
            let image = frame.into_buffer();
            let [r, g, _, a] = image.get_pixel(image.width() / 2, image.height() / 2).0;
            assert_eq!(a, 255, "opaque");
            assert!(r.abs_diff(g) > 150, "clearly red or green: {r} {g}");
            (image.dimensions(), g > r, numerator / denominator)
        })
        .collect()
}

/// Green, red, green… as the source alternates them, each at `size` for 100 ms.
fn alternating(count: usize, size: (u32, u32)) -> Vec<((u32, u32), bool, u32)> {
    (0..count).map(|i| (size, i % 2 == 0, 100)).collect()
}

#[test]
fn a_gif_becomes_an_animated_webp_and_a_gif_with_its_frames_delays_and_loop_count() {
    // Two repeats after the first play: three plays.
    let gif = animated_gif(120, 90, 6, Some(2));
    for format in [OutputFormat::Webp, OutputFormat::Gif] {
        let thumbnail = make_thumbnail(&gif, &animated(40, 30, format), Limits::pixels(1 << 30)).unwrap();
        assert_eq!(frames(&thumbnail.bytes), alternating(6, (40, 30)), "{format:?}");
        let kept = image_probe::animation(
            &thumbnail.bytes,
            if format == OutputFormat::Gif { SourceFormat::Gif } else { SourceFormat::Webp },
        );
        assert_eq!(kept, Some(image_probe::Animation { frames: 6, plays: 3 }), "{format:?}");
        assert_eq!(
            (thumbnail.info.format.as_str(), thumbnail.info.width, thumbnail.info.height, thumbnail.info.frames),
            (format.name(), 40, 30, Some(6))
        );
        assert!(thumbnail.info.thumbhash.is_some());
    }
}

#[test]
fn an_animated_webp_that_plays_for_ever_becomes_a_gif_that_does() {
    let webp = animated_webp(64, 64, 5, 0);
    let thumbnail = make_thumbnail(&webp, &animated(32, 32, OutputFormat::Gif), Limits::pixels(1 << 30)).unwrap();
    assert_eq!(frames(&thumbnail.bytes), alternating(5, (32, 32)));
    assert_eq!(
        image_probe::animation(&thumbnail.bytes, SourceFormat::Gif),
        Some(image_probe::Animation { frames: 5, plays: 0 })
    );
}

#[test]
fn without_animated_and_in_a_still_format_the_first_frame_is_kept() {
    let gif = animated_gif(80, 60, 4, Some(0));
    let still = ResizeArgs::new(40, 30, Fit::Cover, OutputFormat::Png);
    let outputs = [still, animated(20, 15, OutputFormat::Webp), ResizeArgs { animated: false, ..still }];
    let made = make_thumbnails(&gif, &outputs, Limits::pixels(1 << 30)).unwrap();
    assert_eq!(made.len(), 3);
    for thumbnail in [&made[0], &made[2]] {
        let first = image::load_from_memory(&thumbnail.bytes).unwrap().to_rgb8();
        let [r, g, _] = first.get_pixel(20, 15).0;
        assert!(g > 200 && r < 60, "the first frame is green: {r} {g}");
        assert_eq!(thumbnail.info.frames, None);
    }
    assert_eq!(frames(&made[1].bytes).len(), 4, "the animated rendition beside them");
    let alone = make_thumbnail(&gif, &still, Limits::pixels(1 << 30)).unwrap();
    assert_eq!(alone.info.frames, None);
}

#[test]
fn a_still_source_asked_for_animated_output_gives_a_still_image() {
    let png = sample_image(image::ImageFormat::Png, 60, 40);
    let thumbnail = make_thumbnail(&png, &animated(30, 20, OutputFormat::Gif), Limits::pixels(1 << 30)).unwrap();
    assert!(thumbnail.bytes.starts_with(b"GIF8"));
    assert_eq!((thumbnail.info.width, thumbnail.info.frames), (30, None));
    assert_eq!(image_probe::animation(&thumbnail.bytes, SourceFormat::Gif), None);
}

#[test]
fn an_animation_over_the_frames_by_pixels_limit_is_refused_before_a_frame_is_decoded() {
    let gif = animated_gif(100, 100, 5, Some(0));
    let args = animated(50, 50, OutputFormat::Webp);
    // 5 frames of 10,000 pixels: 50,000 in all.
    let limits = Limits { max_animation_pixels: 49_999, ..Limits::pixels(1 << 30) };
    let refused = make_thumbnail(&gif, &args, limits).unwrap_err();
    assert!(matches!(refused, PipelineError::AnimationTooLarge { frames: 5, width: 100, height: 100, .. }));
    assert!(refused.to_string().contains("5 frames of 100x100"), "{refused}");
    assert!(matches!(estimate_peak(&gif, &[args], &limits), Err(PipelineError::AnimationTooLarge { .. })));
    let limits = Limits { max_animation_pixels: 50_000, ..limits };
    assert!(make_thumbnail(&gif, &args, limits).is_ok(), "the limit itself is allowed");
    let first_frame = ResizeArgs { animated: false, ..args };
    assert!(make_thumbnail(&gif, &first_frame, Limits { max_animation_pixels: 1, ..limits }).is_ok());
}

#[test]
fn a_cut_animation_keeps_the_frames_before_the_cut_and_its_estimate_covers_its_frames() {
    let gif = animated_gif(64, 48, 8, Some(0));
    let cut = &gif[..gif.len() * 5 / 8];
    let thumbnail = make_thumbnail(cut, &animated(32, 24, OutputFormat::Webp), Limits::pixels(1 << 30)).unwrap();
    let kept = frames(&thumbnail.bytes);
    assert!((1..8).contains(&kept.len()), "{} frames", kept.len());
    assert_eq!(kept, alternating(kept.len(), (32, 24)));
    // Eight 640x480 output frames alone are 9.8 MB: the estimate counts each.
    let large = animated_gif(640, 480, 8, Some(0));
    let args = animated(640, 480, OutputFormat::Webp);
    let peak = estimate_peak(&large, &[args], &Limits::pixels(1 << 30)).unwrap();
    assert!(peak > 8 * 640 * 480 * 4, "{peak}");
    let still = estimate_peak(&large, &[ResizeArgs { animated: false, ..args }], &Limits::pixels(1 << 30)).unwrap();
    assert!(still < peak / 2, "{still} against {peak}");
}

#[test]
fn an_avif_sequence_becomes_an_animated_webp_through_ffmpeg() {
    // libheif 1.15 reads an AVIF sequence's still only; FFmpeg gives its frames.
    let avif = thumbq_common::fixtures::animated_avif(96, 72, 4);
    let thumbnail = make_thumbnail(&avif, &animated(48, 36, OutputFormat::Webp), Limits::pixels(1 << 30)).unwrap();
    assert_eq!(frames(&thumbnail.bytes), alternating(4, (48, 36)));
    assert_eq!(thumbnail.info.frames, Some(4));
    let still = ResizeArgs { animated: false, ..animated(48, 36, OutputFormat::Png) };
    assert_eq!(make_thumbnail(&avif, &still, Limits::pixels(1 << 30)).unwrap().info.frames, None, "its first frame");
}

#[test]
fn an_avif_sequence_with_a_gap_in_its_timestamps_gives_its_frames_not_copies_to_fill_the_gap() {
    // The review's finding: FFmpeg's default rate filling made 168 frames of these 3 (a 50-second gap), all held
    // in the worker's memory; frames now pass through as stored.
    let source = "nullsrc=size=40x30:rate=10,geq=r='255*mod(N,2)':g='255*(1-mod(N,2))':b=64";
    let avif = thumbq_common::fixtures::ffmpeg_video(
        "avif",
        &["-f", "lavfi", "-i", source, "-frames:v", "3", "-vf", "setpts='if(eq(N,2),PTS+500/(10*TB),PTS)'"]
            .into_iter()
            .chain(["-fps_mode", "passthrough", "-c:v", "libaom-av1", "-cpu-used", "8", "-pix_fmt", "yuv420p"])
            .collect::<Vec<_>>(),
    );
    let thumbnail = make_thumbnail(&avif, &animated(20, 15, OutputFormat::Webp), Limits::pixels(1 << 30)).unwrap();
    let made = frames(&thumbnail.bytes);
    let delays: Vec<u32> = made.iter().map(|(_, _, delay)| *delay).collect();
    assert_eq!(delays, [100, 50_100, 100]);
    assert_eq!(made.iter().map(|(_, green, _)| *green).collect::<Vec<_>>(), [true, false, true], "in order");
}
