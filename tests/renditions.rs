//! Renditions: one upload, one task, several thumbnails, each its own file; presets from configuration and
//! ad-hoc sizes.

use image::{GenericImageView, ImageFormat};
use thumbq_common::{
    fixtures::sample_image,
    task::{TaskStatus, parse_presets},
};

use crate::support::{Backend, on_each_store, spawn_api, spawn_api_configured, spawn_api_with_store};

const PRESETS: &str = "small=100x100:cover,card=320x240:cover:jpeg:q70,large=1280x1280:contain:webp";

on_each_store!(one_upload_makes_every_rendition_each_downloadable_on_its_own);
async fn one_upload_makes_every_rendition_each_downloadable_on_its_own(backend: Backend) {
    let app = spawn_api_with_store(backend, |s| s.presets = parse_presets(PRESETS).unwrap()).await;
    app.start_worker().await;
    // 1600x1000: `large` (contain in 1280x1280) is 1280x800.
    let photo = sample_image(ImageFormat::Jpeg, 1600, 1000);
    let accepted = app.upload_ok(photo, "preset=small,large,card&sizes=64x48&format=png").await;
    let id = accepted.id;
    let expected = [
        ("small", format!("{id}-small.png"), (100, 100), ImageFormat::Png),
        ("large", format!("{id}-large.webp"), (1280, 800), ImageFormat::WebP),
        ("card", format!("{id}-card.jpg"), (320, 240), ImageFormat::Jpeg),
        ("64x48", format!("{id}-64x48.png"), (64, 48), ImageFormat::Png),
    ];
    let listed: Vec<(&str, &str)> = accepted.renditions.iter().map(|r| (r.name.as_str(), r.file.as_str())).collect();
    let wanted: Vec<(&str, &str)> = expected.iter().map(|(name, file, ..)| (*name, file.as_str())).collect();
    assert_eq!(listed, wanted, "the 202 lists every rendition in the order asked");
    assert_eq!(accepted.name, expected[0].1, "the task is known by its first rendition");
    for rendition in &accepted.renditions {
        let url = rendition.url.as_deref().unwrap();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with(&rendition.file), "{url}");
    }

    for (name, file, size, format) in &expected {
        let response = app.wait_for_thumbnail(file).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], format.to_mime_type(), "{name}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), *format, "{name}");
        assert_eq!(image::load_from_memory(&bytes).unwrap().dimensions(), *size, "{name}");
    }
    let record = app.task(id).await;
    assert_eq!((record.status, record.attempts), (TaskStatus::Success, 1), "one task made them all");
    assert_eq!(record.renditions.len(), 4);
    for ((name, file, size, _), rendition) in expected.iter().zip(&record.renditions) {
        let result = rendition.result.as_ref().unwrap_or_else(|| panic!("{name} has a result"));
        assert_eq!((rendition.name.as_str(), &rendition.file, (result.width, result.height)), (*name, file, *size));
    }
    assert_eq!(record.renditions[2].args.quality, Some(70), "the preset's own quality");
    assert_eq!(record.result.as_ref().map(|r| r.width), Some(100), "the task's result is its first rendition's");
    assert!(record.result.and_then(|r| r.thumbhash).is_some(), "with a placeholder");

    let mut stored: Vec<String> = app.stored_thumbnails().await.iter().map(ToString::to_string).collect();
    stored.sort();
    let mut files: Vec<String> = expected.iter().map(|(_, file, ..)| file.clone()).collect();
    files.sort();
    assert_eq!(stored, files, "one file per rendition and nothing else");
    assert_eq!(app.stored_originals().await, vec![id], "the original is kept for renditions later");
    assert_eq!(app.get(&format!("/thumbnails/{id}.png")).await.status(), 404, "no plain thumbnail");
    assert_eq!(app.get(&format!("/thumbnails/{id}-medium.png")).await.status(), 404, "no such rendition");

    // Erasing by any rendition's name erases the task and every file.
    let response = app.client.delete(format!("{}/thumbnails/{}", app.base, expected[1].1)).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(app.stored_thumbnails().await.is_empty());
    assert_eq!(app.get(&format!("/tasks/{id}")).await.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendition_request_that_makes_no_sense_is_a_400_that_says_why_and_queues_nothing() {
    let app = spawn_api_configured(|s| s.presets = parse_presets(PRESETS).unwrap()).await;
    let image = sample_image(ImageFormat::Png, 64, 64);
    for (query, reason) in [
        ("preset=small,huge", "no preset named \"huge\"; this service has: small, card, large"),
        ("preset=small&width=50", "width and height size the single thumbnail"),
        ("preset=small,small", "rendition small is asked for twice"),
        ("sizes=01x1,1x1", "rendition 1x1 is asked for twice"),
        ("sizes=64x48,064x0048", "rendition 64x48 is asked for twice"),
        ("sizes=%2B1x1", "not a size"),
        ("preset=small&sizes=100x100,1x1,2x2,3x3,4x4,5x5,6x6,7x7", "at most 8 renditions"),
        ("sizes=100", "not a size"),
        ("sizes=0x10", "not a size"),
        ("sizes=10x9999", "not a size"),
        ("preset=small&format=png&quality=80", "quality applies to none of the renditions"),
        ("sizes=10x10&fit=contain&focus=auto", "focus applies to none of the renditions"),
        ("preset=card&lossless=true", "lossless applies to none of the renditions"),
        ("preset=card&format=png", "format (each fixes its own) applies to none"),
        ("preset=card&quality=50", "quality applies to none of the renditions"),
        ("preset=card&fit=contain", "fit (each fixes its own) applies to none"),
        ("preset=small&quality=0&format=jpeg", "rendition small: quality must be"),
    ] {
        let response = app.upload(image.clone(), query).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{query}: {error}");
    }
    assert!(app.stored_originals().await.is_empty(), "nothing was stored");
    assert!(app.redis_keys().await.iter().all(|k| !k.contains(":task:")), "nothing was recorded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_size_is_named_and_stored_in_its_canonical_spelling() {
    let app = spawn_api().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "sizes=01x1,064x0048").await;
    let named: Vec<(&str, String)> = accepted.renditions.iter().map(|r| (r.name.as_str(), r.file.clone())).collect();
    let id = accepted.id;
    assert_eq!(named, [("1x1", format!("{id}-1x1.png")), ("64x48", format!("{id}-64x48.png"))]);
    let record = app.task(id).await;
    let stored: Vec<&str> = record.renditions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(stored, ["1x1", "64x48"], "the record keeps the canonical names");
    app.stop().await;
}
