//! Animations end to end: `animated=true` keeps an animated GIF's, WebP's or AVIF's frames, as GIF or WebP, beside still
//! renditions; the parameters that mean nothing are refused before anything is stored.

use std::io::Cursor;

use image::{AnimationDecoder, codecs::gif::GifDecoder, codecs::webp::WebPDecoder};
use thumbq_common::{
    fixtures::{animated_avif, animated_gif, animated_webp},
    image_probe::{self, Animation},
    task::{SourceFormat, TaskStatus, parse_presets},
};

use crate::support::{Backend, on_each_store, spawn_api_with_store, spawn_app};

/// The frames' sizes and delays (ms) of an animated GIF or WebP, decoded by the `image` crate.
fn frames(bytes: &[u8]) -> Vec<((u32, u32), u32)> {
    let frames = if bytes.starts_with(b"GIF") {
        GifDecoder::new(Cursor::new(bytes)).unwrap().into_frames().collect_frames()
    } else {
        WebPDecoder::new(Cursor::new(bytes)).unwrap().into_frames().collect_frames()
    };
    let delay = |frame: &image::Frame| {
        let (numerator, denominator) = frame.delay().numer_denom_ms();
        numerator / denominator
    };
    frames.unwrap().iter().map(|frame| (frame.buffer().dimensions(), delay(frame))).collect()
}

on_each_store!(an_animated_gif_and_webp_keep_their_frames_beside_a_still_rendition);
async fn an_animated_gif_and_webp_keep_their_frames_beside_a_still_rendition(backend: Backend) {
    let app = spawn_api_with_store(backend, |s| s.presets = parse_presets("still=160x160:cover:png").unwrap()).await;
    app.start_worker().await;
    // A GIF asked for no format stays a GIF; its loop extension (3 repeats: 4 plays) is kept.
    let gif = app.upload_ok(animated_gif(160, 120, 7, Some(3)), "animated=true&width=80&height=60").await;
    assert!(gif.name.ends_with(".gif"), "{}", gif.name);
    let response = app.wait_for_thumbnail(&gif.name).await;
    assert_eq!((response.status().as_u16(), &response.headers()["content-type"]), (200, &"image/gif".parse().unwrap()));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(frames(&bytes), vec![((80, 60), 100); 7]);
    assert_eq!(image_probe::animation(&bytes, SourceFormat::Gif), Some(Animation { frames: 7, plays: 4 }));
    let record = app.task(gif.id).await;
    assert_eq!(record.status, TaskStatus::Success);
    assert_eq!(record.result.and_then(|r| r.frames), Some(7), "the record says it is animated");

    // An animated WebP as a WebP animation and, in the same task, a still PNG of its first frame (the preset fixes
    // PNG).
    let webp = app.upload_ok(animated_webp(120, 90, 5, 0), "animated=true&sizes=60x45&preset=still&format=webp").await;
    let [still, animated] = &webp.renditions[..] else { panic!("two renditions: {:?}", webp.renditions) };
    let bytes = app.wait_for_thumbnail(&animated.file).await.bytes().await.unwrap();
    assert_eq!(frames(&bytes), vec![((60, 45), 100); 5]);
    assert_eq!(image_probe::animation(&bytes, SourceFormat::Webp), Some(Animation { frames: 5, plays: 0 }));
    let thumb = app.download_image(&still.file).await;
    assert_eq!((thumb.width(), thumb.height()), (160, 160));
    // An AVIF sequence (FFmpeg reads its frames) becomes an animated WebP by default.
    let avif = app.upload_ok(animated_avif(96, 72, 4), "animated=true&width=48&height=36").await;
    assert!(avif.name.ends_with(".webp"), "{}", avif.name);
    let bytes = app.wait_for_thumbnail(&avif.name).await.bytes().await.unwrap();
    assert_eq!(frames(&bytes), vec![((48, 36), 100); 4]);
    // Without animated=true, the first frame alone, as before.
    let first = app.upload_ok(animated_gif(160, 120, 7, Some(3)), "width=40&height=30").await;
    assert!(first.name.ends_with(".png"));
    let bytes = app.wait_for_thumbnail(&first.name).await.bytes().await.unwrap();
    assert_eq!(image_probe::animation(&bytes, SourceFormat::Gif), None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_output_in_a_still_format_or_an_unused_animated_flag_is_refused() {
    let app = spawn_app().await;
    let gif = animated_gif(40, 30, 3, Some(0));
    for (query, reason) in [
        ("animated=true&format=jpeg", "animated output is made as webp or gif, not jpeg"),
        ("animated=true&format=png", "not png"),
        ("animated=true&format=gif&quality=80", "quality applies to lossy outputs only"),
        ("animated=true&sizes=40x30&format=avif", "animated (it needs a webp or gif rendition)"),
        ("animated=yes", "animated"),
    ] {
        let response = app.upload(gif.clone(), query).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(reason), "{query}: {body}");
    }
    assert!(app.stored_originals().await.is_empty(), "nothing was stored");
    app.stop().await;
}
