//! `format=auto`: one task makes AVIF, WebP and a fallback from one decode; the thumbnail's URL serves the best the
//! client's `Accept` names, with `Vary: Accept` and each variant's own ETag; each variant has its own URL too.

use image::ImageFormat;
use thumbq_common::{
    fixtures::{sample_image, transparent_png},
    image_probe,
    task::{OutputFormat, SourceFormat, TaskStatus},
};

use crate::support::{Backend, TestApp, on_each_store, spawn_app};

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const SAFARI_14: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";

/// `GET <url>` with `Accept: accept` (long-polling): its status, content type, ETag, `Vary` and
/// `Content-Location`, and the format and size its bytes hold.
async fn fetch(
    app: &TestApp,
    url: &str,
    accept: &str,
) -> (u16, String, String, String, String, (SourceFormat, u32, u32)) {
    let response = app.client.get(format!("{url}?wait=30")).header("accept", accept).send().await.unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (status, kind, etag, vary, location) = (
        response.status().as_u16(),
        header("content-type"),
        header("etag"),
        header("vary"),
        header("content-location"),
    );
    let bytes = response.bytes().await.unwrap();
    let probe = image_probe::probe(&bytes, u64::MAX).unwrap();
    (status, kind, etag, vary, location, (probe.format, probe.width, probe.height))
}

on_each_store!(the_thumbnail_url_serves_avif_webp_or_jpeg_as_the_client_accepts);
async fn the_thumbnail_url_serves_avif_webp_or_jpeg_as_the_client_accepts(backend: Backend) {
    let app = crate::support::spawn_app_with_store(backend).await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 640, 480), "format=auto&width=80&height=60").await;
    let id = accepted.id;
    assert_eq!(accepted.name, id.to_string(), "named without a format");
    assert!(accepted.url.ends_with(&format!("/thumbnails/{id}")), "{}", accepted.url);
    let variants: Vec<(OutputFormat, &str)> = accepted.variants.iter().map(|v| (v.format, v.file.as_str())).collect();
    let files = [format!("{id}.jpg"), format!("{id}.avif"), format!("{id}.webp")];
    assert_eq!(
        variants,
        vec![(OutputFormat::Jpeg, files[0].as_str()), (OutputFormat::Avif, &files[1]), (OutputFormat::Webp, &files[2])]
    );

    let mut etags = Vec::new();
    for (accept, format, kind, file) in [
        (CHROME, SourceFormat::Avif, "image/avif", &files[1]),
        (SAFARI_14, SourceFormat::Webp, "image/webp", &files[2]),
        ("*/*", SourceFormat::Jpeg, "image/jpeg", &files[0]),
        ("image/avif;q=0,image/webp", SourceFormat::Webp, "image/webp", &files[2]),
    ] {
        let (status, content_type, etag, vary, location, made) = fetch(&app, &accepted.url, accept).await;
        assert_eq!((status, content_type.as_str(), made), (200, kind, (format, 80, 60)), "{accept}");
        assert_eq!(vary, "Accept", "{accept}");
        assert!(location.ends_with(&format!("/thumbnails/{file}")), "{accept}: {location}");
        etags.push(etag);
    }
    assert!(etags[0] != etags[1] && etags[1] != etags[2] && etags[1] == etags[3], "an ETag per variant: {etags:?}");
    // Revalidating the AVIF answer with its ETag.
    let response = app.client.get(&accepted.url).header("accept", CHROME).header("if-none-match", &etags[0]);
    assert_eq!(response.send().await.unwrap().status(), 304);
    // Each variant at its own URL, whatever the client accepts.
    for variant in &accepted.variants {
        let (status, content_type, _, vary, _, _) = fetch(&app, &variant.url, "*/*").await;
        assert_eq!((status, content_type.as_str(), vary.as_str()), (200, variant.format.content_type(), ""));
    }
    let record = app.task(id).await;
    assert_eq!((record.status, record.attempts), (TaskStatus::Success, 1), "one task made them all");
    assert_eq!(record.url.as_deref(), Some(accepted.url.as_str()));
    assert_eq!(record.variants.len(), 3);
    assert_eq!(record.result.map(|r| (r.format, r.width)), Some(("jpeg".to_owned(), 80)), "the fallback's");
    assert_eq!(app.stored_thumbnails().await.len(), 3);
    // Deleting one variant's name erases the task's every file.
    let deleted = app.client.delete(format!("{}/thumbnails/{}", app.base, files[1])).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(app.stored_thumbnails().await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transparent_source_falls_back_to_png_and_renditions_each_negotiate() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(transparent_png(200, 200), "format=auto&sizes=64x64,32x32&quality=60").await;
    let id = accepted.id;
    assert_eq!(accepted.name, format!("{id}-64x64"));
    for (rendition, side) in accepted.renditions.iter().zip([64, 32]) {
        let url = rendition.url.as_deref().unwrap();
        assert!(url.ends_with(&format!("/thumbnails/{id}-{side}x{side}")), "{url}");
        let formats: Vec<OutputFormat> = rendition.variants.iter().map(|v| v.format).collect();
        assert_eq!(formats, [OutputFormat::Png, OutputFormat::Avif, OutputFormat::Webp]);
        let (status, content_type, .., made) = fetch(&app, url, "*/*").await;
        assert_eq!((status, content_type.as_str(), made), (200, "image/png", (SourceFormat::Png, side, side)));
        let (_, content_type, ..) = fetch(&app, url, CHROME).await;
        assert_eq!(content_type, "image/avif");
    }
    let record = app.task(id).await;
    assert_eq!(record.renditions[1].result.as_ref().map(|r| r.format.as_str()), Some("png"));
    assert_eq!(record.renditions[0].args.quality, Some(60), "kept for the AVIF and WebP variants");
    assert_eq!(app.stored_thumbnails().await.len(), 6);
    for (query, reason) in [
        ("format=auto&animated=true", "format=auto makes lossy still images"),
        ("format=auto&lossless=true", "format=auto makes lossy still images"),
    ] {
        let response = app.upload(transparent_png(20, 20), query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.unwrap().contains(reason), "{query}");
    }
    // A name without a format that no task made is a 404.
    let unknown = app.client.get(format!("{}/thumbnails/{}", app.base, thumbq_common::task::TaskId::new()));
    assert_eq!(unknown.send().await.unwrap().status(), 404);
    // Deleting by the name the 202 gave (no format) erases every file of the task.
    let deleted = app.client.delete(format!("{}/thumbnails/{}", app.base, accepted.name)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(app.stored_thumbnails().await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_record_a_variant_is_still_negotiated_and_deleting_one_erases_all() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 320, 240), "format=auto").await;
    let (_, content_type, ..) = fetch(&app, &accepted.url, CHROME).await;
    assert_eq!(content_type, "image/avif");
    // The record expires (thumbnails outlive records): the store says which variants exist.
    let record = app.states.get(accepted.id).await.unwrap().unwrap();
    app.states.delete(&record).await.unwrap();
    let (status, content_type, ..) = fetch(&app, &accepted.url, SAFARI_14).await;
    assert_eq!((status, content_type.as_str()), (200, "image/webp"));
    assert!(app.states.get(accepted.id).await.unwrap().is_none(), "no record rebuilt from one variant of three");
    let deleted = app.client.delete(format!("{}/thumbnails/{}.jpg", app.base, accepted.id)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(app.stored_thumbnails().await.is_empty(), "every variant erased");
    app.stop().await;
}
