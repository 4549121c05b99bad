//! Uploading images of every accepted format and downloading their thumbnails.

use std::time::{Duration, Instant};

use image::{GenericImageView, ImageFormat};
use thumbq_common::{
    TaskStatus,
    fixtures::{cjxl, encode, ffmpeg_video, heif_enc, pdf, sample_image, transparent_png},
};

use crate::support::{Backend, on_each_store, spawn_api, spawn_app, spawn_app_with_store};

on_each_store!(every_accepted_format_becomes_a_100x100_thumbnail);
async fn every_accepted_format_becomes_a_100x100_thumbnail(backend: Backend) {
    let app = spawn_app_with_store(backend).await;
    let png = sample_image(ImageFormat::Png, 320, 240);
    let rgba = image::load_from_memory(&transparent_png(128, 128)).expect("a PNG");
    let cases = [
        ("JPEG", sample_image(ImageFormat::Jpeg, 320, 240), "jpg", "image/jpeg"),
        ("PNG", png.clone(), "png", "image/png"),
        ("WebP", sample_image(ImageFormat::WebP, 320, 240), "webp", "image/webp"),
        ("GIF", sample_image(ImageFormat::Gif, 320, 240), "png", "image/png"),
        ("BMP", sample_image(ImageFormat::Bmp, 320, 240), "png", "image/png"),
        ("TIFF", sample_image(ImageFormat::Tiff, 320, 240), "png", "image/png"),
        ("ICO", encode(&rgba, ImageFormat::Ico), "png", "image/png"),
        ("PNM", sample_image(ImageFormat::Pnm, 320, 240), "png", "image/png"),
        ("QOI", sample_image(ImageFormat::Qoi, 320, 240), "png", "image/png"),
        // A phone's HEIC photo becomes a JPEG; an AVIF stays AVIF.
        ("HEIC", heif_enc(&png, &["-q", "80"]), "jpg", "image/jpeg"),
        ("AVIF", heif_enc(&png, &["-A", "-q", "80"]), "avif", "image/avif"),
        ("JPEG XL", cjxl(&png, &["-d", "1"]), "png", "image/png"),
        ("PDF", pdf(300, 200, "0 0 1 rg 0 0 150 200 re f", ""), "png", "image/png"),
        // A video's poster is a JPEG.
        (
            "MP4",
            ffmpeg_video("mp4", &["-f", "lavfi", "-i", "testsrc=s=320x240:d=2:r=10", "-c:v", "libx264"]),
            "jpg",
            "image/jpeg",
        ),
        (
            "WebM",
            ffmpeg_video("webm", &["-f", "lavfi", "-i", "testsrc=s=320x240:d=2:r=10", "-c:v", "libvpx"]),
            "jpg",
            "image/jpeg",
        ),
        (
            "SVG",
            b"<svg xmlns='http://www.w3.org/2000/svg' width='32' height='24'><circle r='9' cx='9' cy='9'/></svg>"
                .to_vec(),
            "png",
            "image/png",
        ),
    ];
    for (format, bytes, extension, content_type) in &cases {
        let accepted = app.upload_ok(bytes.clone(), "").await;
        assert!(accepted.name.ends_with(&format!(".{extension}")), "{format} gave {}", accepted.name);
        let response = app.wait_for_thumbnail(&accepted.name).await;
        assert_eq!(response.status(), 200, "{format}");
        assert_eq!(response.headers()["content-type"], *content_type, "{format}");
        let thumbnail = thumbq_worker::pipeline::quality::decode(&response.bytes().await.unwrap());
        assert_eq!(thumbnail.dimensions(), (100, 100), "{format}");
    }
    assert_eq!(app.stored_thumbnails().await.len(), cases.len());
    // Kept for renditions later (`THUMBQ_KEEP_ORIGINALS`), one per task.
    assert_eq!(app.stored_originals().await.len(), cases.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fit_mode_gives_its_size_and_format_can_be_chosen() {
    let app = spawn_app().await;
    let wide = sample_image(ImageFormat::Png, 400, 100);
    let cases = [
        ("fit=cover&width=120&height=80", (120, 80)),
        ("fit=contain&width=100&height=100", (100, 25)),
        ("fit=fill&width=30&height=70", (30, 70)),
        ("width=64", (64, 100)),
    ];
    for (query, size) in cases {
        let accepted = app.upload_ok(wide.clone(), query).await;
        assert_eq!(app.download_image(&accepted.name).await.dimensions(), size, "{query}");
    }
    for (format, extension) in [("jpeg", "jpg"), ("webp", "webp"), ("png", "png")] {
        let accepted = app.upload_ok(wide.clone(), &format!("format={format}")).await;
        assert!(accepted.name.ends_with(extension));
        let response = app.wait_for_thumbnail(&accepted.name).await;
        let bytes = response.bytes().await.unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap().extensions_str()[0], extension);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_body_upload_is_accepted_like_a_form_with_an_image_video_or_pdf_type() {
    let app = spawn_app().await;
    let response = app.upload_raw(sample_image(ImageFormat::Jpeg, 200, 200), "image/jpeg", "width=50&height=40").await;
    assert_eq!(response.status(), 202);
    let accepted: thumbq_api::routes::thumbnails::Accepted = response.json().await.unwrap();
    assert_eq!(app.download_image(&accepted.name).await.dimensions(), (50, 40));
    // Documents and videos are sent with their own types.
    let page = pdf(300, 200, "0 0 1 rg 0 0 150 200 re f", "");
    let clip = ffmpeg_video("webm", &["-f", "lavfi", "-i", "testsrc=s=160x120:d=1:r=10", "-c:v", "libvpx"]);
    for (bytes, content_type) in [(page, "application/pdf"), (clip, "video/webm")] {
        let response = app.upload_raw(bytes, content_type, "width=50&height=40").await;
        assert_eq!(response.status(), 202, "{content_type}");
        let accepted: thumbq_api::routes::thumbnails::Accepted = response.json().await.unwrap();
        assert_eq!(app.download_image(&accepted.name).await.dimensions(), (50, 40), "{content_type}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_upload_answers_202_with_location_and_absolute_urls() {
    let app = spawn_app().await;
    let response = app.upload(sample_image(ImageFormat::Png, 64, 64), "").await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: thumbq_api::routes::thumbnails::Accepted = response.json().await.unwrap();
    assert_eq!(accepted.status, TaskStatus::Pending);
    assert_eq!(location, format!("/thumbnails/{}", accepted.name));
    assert_eq!(accepted.url, format!("{}/thumbnails/{}", app.base, accepted.name));
    assert_eq!(accepted.status_url, format!("{}/tasks/{}", app.base, accepted.id));
    assert_eq!(accepted.name, format!("{}.png", accepted.id));
    app.stop().await;
}

on_each_store!(a_finished_thumbnail_is_cacheable_with_a_strong_etag);
async fn a_finished_thumbnail_is_cacheable_with_a_strong_etag(backend: Backend) {
    let app = spawn_app_with_store(backend).await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;
    let response = app.wait_for_thumbnail(&accepted.name).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "strong ETag, got {etag}");

    let revalidated = app
        .client
        .get(format!("{}/thumbnails/{}", app.base, accepted.name))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert!(revalidated.bytes().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_answers_202_and_a_long_poll_returns_as_soon_as_it_is_done() {
    // No worker yet: the task stays PENDING.
    let app = spawn_api().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 64, 64), "").await;

    let pending = app.get(&format!("/thumbnails/{}", accepted.name)).await;
    assert_eq!(pending.status(), 202);
    assert_eq!(pending.headers()["retry-after"], "1");
    let body: serde_json::Value = pending.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "PENDING"}), "a download tells the state, not the record");

    // A short long poll times out with the current state, after waiting its full time.
    let started = Instant::now();
    let timed_out = app.get(&format!("/thumbnails/{}?wait=1", accepted.name)).await;
    assert_eq!(timed_out.status(), 202);
    assert!(started.elapsed() >= Duration::from_secs(1), "answered after {:?}", started.elapsed());

    // A 30 s long poll is answered once a worker has made the thumbnail, long before the 30 s are up.
    let url = format!("{}/thumbnails/{}?wait=30", app.base, accepted.name);
    let poll = tokio::spawn(async move {
        let response = reqwest::get(url).await.unwrap();
        (response.status(), Instant::now())
    });
    app.until_long_polls_wait(1).await;
    app.start_worker().await;
    let (status, answered_at) = poll.await.unwrap();
    assert_eq!(status, 200);
    let record = app.task(accepted.id).await;
    let finished = record.finished_at.expect("finished_at is set");
    let lag = chrono::Utc::now() - finished - chrono::Duration::from_std(answered_at.elapsed()).unwrap();
    assert!(lag < chrono::Duration::seconds(2), "long poll answered {lag} after the task finished");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_api_answers_open_long_polls_and_refuses_new_requests() {
    let mut app = spawn_api().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Png, 32, 32), "").await;
    let url = format!("{}/thumbnails/{}?wait=30", app.base, accepted.name);
    let poll = tokio::spawn(async move { reqwest::get(url).await.unwrap().status() });
    app.until_long_polls_wait(1).await;

    let started = Instant::now();
    app.stop_api().await;
    assert!(started.elapsed() < Duration::from_secs(10), "draining took {:?}", started.elapsed());
    assert_eq!(poll.await.unwrap(), 202, "the open long poll is answered with the current state");
    assert!(reqwest::get(format!("{}/health", app.base)).await.is_err(), "no new connections after shutdown");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_and_lossless_shape_the_output_and_the_record_keeps_them_with_a_placeholder() {
    let app = spawn_app().await;
    let photo = include_bytes!("../assets/example.jpg").to_vec();
    let mut sizes = std::collections::HashMap::new();
    for query in ["format=webp", "format=webp&lossless=true", "format=jpeg&quality=30", "format=jpeg&quality=95"] {
        let accepted = app.upload_ok(photo.clone(), &format!("width=200&height=200&{query}")).await;
        let response = app.wait_for_thumbnail(&accepted.name).await;
        assert_eq!(response.status(), 200, "{query}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(image::load_from_memory(&bytes).unwrap().dimensions(), (200, 200), "{query}");
        let record = app.task(accepted.id).await;
        let placeholder = record.result.and_then(|r| r.thumbhash).unwrap_or_default();
        assert!((20..=60).contains(&placeholder.len()), "{query}: a ThumbHash placeholder, got {placeholder:?}");
        let args = record.args;
        assert_eq!(
            (args.quality, args.lossless),
            match query {
                "format=webp&lossless=true" => (None, true),
                "format=jpeg&quality=30" => (Some(30), false),
                "format=jpeg&quality=95" => (Some(95), false),
                _ => (None, false),
            }
        );
        sizes.insert(query, bytes.len());
    }
    assert!(sizes["format=webp"] * 3 < sizes["format=webp&lossless=true"], "WebP is lossy by default: {sizes:?}");
    assert!(sizes["format=jpeg&quality=30"] * 2 < sizes["format=jpeg&quality=95"], "{sizes:?}");
    for query in [
        "quality=0",
        "quality=101",
        "format=png&quality=50",
        "format=jpeg&lossless=true",
        "format=webp&lossless=true&quality=50",
    ] {
        let response = app.upload(sample_image(ImageFormat::Png, 64, 64), query).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("quality") || e.contains("lossless")),
            "{query}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avif_output_is_served_as_image_avif_at_the_size_asked_for() {
    let app = spawn_app().await;
    let photo = include_bytes!("../assets/example.jpg").to_vec();
    let accepted = app.upload_ok(photo.clone(), "width=160&height=120&format=avif").await;
    assert!(accepted.name.ends_with(".avif"), "{}", accepted.name);
    let response = app.wait_for_thumbnail(&accepted.name).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/avif");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(thumbq_worker::pipeline::quality::decode(&bytes).dimensions(), (160, 120));
    let smaller = app.upload_ok(photo, "width=160&height=120&format=avif&quality=30").await;
    let small = app.wait_for_thumbnail(&smaller.name).await.bytes().await.unwrap();
    assert!(small.len() < bytes.len(), "quality 30 {} B vs default {} B", small.len(), bytes.len());
    let response = app.upload(sample_image(ImageFormat::Png, 64, 64), "format=avif&lossless=true").await;
    assert_eq!(response.status(), 400, "lossless is WebP's");
    app.stop().await;
}

/// A JPEG photo-to-be whose EXIF holds a text that must never reach a thumbnail (standing in for GPS position).
fn jpeg_with_secret_exif(secret: &[u8]) -> Vec<u8> {
    // A big-endian TIFF header, one IFD with ImageDescription (0x010E, ASCII) pointing past the IFD, then the text.
    let mut exif = b"MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend(1u16.to_be_bytes());
    exif.extend(0x010Eu16.to_be_bytes());
    exif.extend(2u16.to_be_bytes());
    exif.extend((secret.len() as u32 + 1).to_be_bytes());
    exif.extend(26u32.to_be_bytes());
    exif.extend(0u32.to_be_bytes());
    exif.extend(secret);
    exif.push(0);
    let image = image::RgbImage::from_fn(400, 300, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut with_exif = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut with_exif, 90);
    image::ImageEncoder::set_exif_metadata(&mut encoder, exif).unwrap();
    image::ImageEncoder::write_image(encoder, image.as_raw(), 400, 300, image::ExtendedColorType::Rgb8).unwrap();
    assert!(with_exif.windows(secret.len()).any(|w| w == secret), "the fixture carries the secret");
    with_exif
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metadata_of_the_original_reaches_a_thumbnail_in_any_format() {
    let app = spawn_app().await;
    let secret = b"GPS 52.3702N 4.8952E home of the uploader";
    let original = jpeg_with_secret_exif(secret);
    for format in ["jpeg", "png", "webp", "webp&lossless=true", "avif"] {
        let accepted = app.upload_ok(original.clone(), &format!("format={format}")).await;
        let response = app.wait_for_thumbnail(&accepted.name).await;
        let bytes = response.bytes().await.unwrap();
        thumbq_worker::pipeline::quality::decode(&bytes);
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{format}: the EXIF text leaked");
        for marker in [&b"Exif\0\0"[..], b"eXIf", b"EXIF", b"XMP", b"iCCP", b"ICCP"] {
            assert!(!bytes.windows(marker.len()).any(|w| w == marker), "{format}: a {marker:?} block");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focus_point_or_auto_focus_keeps_an_off_centre_subject_in_a_cover_crop() {
    let app = spawn_app().await;
    // A red square near the right edge of a wide white image.
    let image = image::RgbImage::from_fn(800, 200, |x, y| {
        let subject = (660..740).contains(&x) && (60..140).contains(&y);
        image::Rgb(if subject { [220, 0, 0] } else { [255, 255, 255] })
    });
    let bytes = thumbq_common::fixtures::encode(&image::DynamicImage::ImageRgb8(image), ImageFormat::Png);
    let mut red = Vec::new();
    for query in ["fit=cover", "fit=cover&focus=0.875,0.5", "fit=cover&focus=auto"] {
        let accepted = app.upload_ok(bytes.clone(), &format!("width=100&height=100&{query}")).await;
        let thumbnail = app.download_image(&accepted.name).await.to_rgb8();
        red.push(thumbnail.pixels().filter(|p| p.0[0] > 150 && p.0[1] < 100).count());
        let args = app.task(accepted.id).await.args;
        assert_eq!(args.focus.map(|f| (f.x, f.y)), query.contains("0.875").then_some((0.875, 0.5)));
        assert_eq!(args.auto_focus, query.contains("auto"));
    }
    assert_eq!(red[0], 0, "the centred crop misses the subject");
    assert!(red[1] > 1400, "the focused crop holds it (40x40 = 1600 pixels): {red:?}");
    assert!(red[2] > 1400, "the attention crop finds it: {red:?}");
    for query in ["focus=1.5,0.5", "focus=0.5", "focus=left,top", "fit=contain&focus=0.5,0.5", "fit=fill&focus=auto"] {
        let response = app.upload(bytes.clone(), query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.unwrap().contains("focus"), "{query}");
    }
    app.stop().await;
}
