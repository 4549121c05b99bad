//! Signed download URLs (`THUMBQ_SIGNED_URLS=1`): the URLs the API hands out work until they expire; unsigned,
//! tampered and expired ones get `403`.

use std::time::Duration;

use image::ImageFormat;
use reqwest::StatusCode;
use thumbq_common::links::UrlSigner;
use thumbq_common::{TaskRecord, fixtures::sample_image, settings::Secret, settings::UrlSigning};

use crate::support::spawn_api_configured;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_unexpired_urls_download() {
    let signing =
        UrlSigning { key: Secret::new("a-test-signing-key-of-32-chars-at-least".into()), ttl: Duration::from_secs(60) };
    let app = spawn_api_configured(|s| s.access.signed_urls = Some(signing.clone())).await;
    app.start_worker().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 320, 200), "width=40&height=30").await;
    assert!(accepted.url.contains("?expires=") && accepted.url.contains("&sig="), "{}", accepted.url);

    let signed = app.client.get(format!("{}&wait=30", accepted.url)).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    let image = image::load_from_memory(&signed.bytes().await.unwrap()).unwrap();
    assert_eq!((image.width(), image.height()), (40, 30));

    let path = format!("/thumbnails/{}", accepted.name);
    assert_eq!(app.get(&path).await.status(), StatusCode::FORBIDDEN, "unsigned");
    let tampered = accepted.url.replace("&sig=", "&sig=A");
    assert_eq!(app.client.get(tampered).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let old = UrlSigner::new(signing).query(&accepted.name, chrono::Utc::now() - chrono::Duration::hours(2));
    let expired = app.get(&format!("{path}?{old}")).await;
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    assert!(expired.text().await.unwrap().contains("expired"));

    // The task record carries a fresh signed URL.
    let record: TaskRecord = app.get(&format!("/tasks/{}", accepted.id)).await.json().await.unwrap();
    let url = record.url.expect("a URL in the record");
    assert_eq!(app.client.get(url).send().await.unwrap().status(), StatusCode::OK);
    app.stop().await;
}
