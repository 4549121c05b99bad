//! What keeps browsers safe: security headers on every answer, a strict policy on the HTML pages (which must still
//! work in Chromium), cross-site uploads refused without a key, and CORS only for the configured origins.

use image::ImageFormat;
use reqwest::{Method, StatusCode};
use thumbq_common::fixtures::sample_image;

use crate::support::{TestApp, browser::chromium, spawn_api, spawn_api_configured, spawn_app};

/// A multipart upload as a browser would send it from a page of `origin`.
async fn browser_upload(app: &TestApp, origin: &str, fetch_site: &str) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Png, 16, 16)).file_name("a.png");
    app.client
        .post(format!("{}/thumbnails", app.base))
        .header("origin", origin)
        .header("sec-fetch-site", fetch_site)
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_nosniff_and_the_pages_are_locked_down() {
    let app = spawn_app().await;
    let accepted = app.upload_ok(sample_image(ImageFormat::Jpeg, 64, 48), "").await;
    let thumbnail = app.wait_for_thumbnail(&accepted.name).await;
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    assert_eq!(thumbnail.headers()["content-disposition"], format!("inline; filename=\"{}\"", accepted.name));
    assert_eq!(thumbnail.headers()["x-content-type-options"], "nosniff");
    for path in ["/tasks", "/health", "/nowhere", "/openapi.json"] {
        assert_eq!(app.get(path).await.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    for path in ["/dashboard", "/docs/"] {
        let response = app.get(path).await;
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
    }
    // The policy must not break the Swagger UI: Chromium renders the document's title from /openapi.json.
    let dom = String::from_utf8(chromium(&format!("{}/docs/", app.base), &["--dump-dom".into()]).await.stdout).unwrap();
    assert!(
        dom.contains("class=\"title\"") && dom.contains("thumbq"),
        "the Swagger UI rendered:\n{}",
        &dom[..dom.len().min(2000)]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_off_a_cross_site_form_cannot_upload_or_delete() {
    let app = spawn_api().await;
    let refused = browser_upload(&app, "https://evil.example", "cross-site").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("cross-site"), "{body}");
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "nothing of it is kept");
    let name = format!("{}.png", uuid::Uuid::new_v4());
    let delete = app
        .client
        .delete(format!("{}/thumbnails/{name}", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);

    // The API's own pages, and clients that are not browsers, may.
    assert_eq!(browser_upload(&app, &app.base, "same-origin").await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.upload(sample_image(ImageFormat::Png, 16, 16), "").await.status(), StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_answers_only_the_configured_origins() {
    let closed = spawn_api().await;
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(Method::OPTIONS, format!("{}/thumbnails", app.base))
            .header("origin", origin.to_owned())
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let answer = preflight(&closed, "https://app.example").await.unwrap();
    assert!(!answer.headers().contains_key("access-control-allow-origin"));
    closed.stop().await;

    let app = spawn_api_configured(|s| s.access.cors_origins = vec!["https://app.example".into()]).await;
    let answer = preflight(&app, "https://app.example").await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(answer.headers()["access-control-allow-origin"], "https://app.example");
    assert!(answer.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let other = preflight(&app, "https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let allowed = browser_upload(&app, "https://app.example", "cross-site").await;
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    assert!(allowed.headers()["access-control-expose-headers"].to_str().unwrap().contains("location"));
    assert_eq!(browser_upload(&app, "https://evil.example", "cross-site").await.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}
