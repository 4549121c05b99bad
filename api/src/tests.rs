//! Router-level tests: the whole application called in-process with `oneshot`, with RabbitMQ and Redis pointed at
//! closed ports, so only what needs no service is exercised: error mapping, the upload extractor, downloads of
//! stored thumbnails and their caching headers.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use thumbq_common::{
    Settings, TaskId,
    file_store::{FileStore, LocalFileStore},
    fixtures::sample_image,
    task::{OutputFormat, ThumbnailName},
};
use tower::ServiceExt;

use crate::{app, state::AppState};

/// The router over a temporary store, with every service unreachable (nothing listens on port 1).
fn router(store: &tempfile::TempDir) -> (Router, Arc<LocalFileStore>) {
    let mut settings = Settings::default();
    settings.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    settings.redis.url = "redis://127.0.0.1:1".into();
    settings.limits.max_upload_bytes = 100_000;
    let files = Arc::new(LocalFileStore::open(store.path()).expect("a store"));
    let state = AppState::new(settings, files.clone(), Default::default()).expect("the state builds");
    (app(state), files)
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = router.clone().oneshot(request).await.expect("the router answers");
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, axum::body::to_bytes(body, 1 << 20).await.expect("a body"))
}

/// The `error` message of a JSON error body.
fn message(headers: &HeaderMap, body: &[u8]) -> String {
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let json: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    json["error"].as_str().expect("an error message").to_owned()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("a request")
}

fn upload(content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post("/thumbnails").header(header::CONTENT_TYPE, content_type).body(body.into()).expect("a request")
}

fn multipart(field: &str, bytes: &[u8]) -> Request<Body> {
    let mut body = format!(
        "--b\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend(bytes);
    body.extend(b"\r\n--b--\r\n");
    upload("multipart/form-data; boundary=b", body)
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_a_json_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (router, _) = router(&dir);
    let long = format!("/health?{}", "a".repeat(10_000));
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (get("/tasks/not-a-uuid"), StatusCode::BAD_REQUEST),
        (get("/tasks/%FF%FE"), StatusCode::BAD_REQUEST),
        (get("/tasks?limit=0"), StatusCode::BAD_REQUEST),
        (get("/tasks?cursor=yesterday"), StatusCode::BAD_REQUEST),
        (get("/thumbnails/secret.png"), StatusCode::BAD_REQUEST),
        (get("/thumbnails/x.png?wait=31"), StatusCode::BAD_REQUEST),
        (get("/no/such/route"), StatusCode::NOT_FOUND),
        (get("/docs/no-such-file.js"), StatusCode::NOT_FOUND),
        (get(&long), StatusCode::URI_TOO_LONG),
        (Request::delete("/health").body(Body::empty()).expect("a request"), StatusCode::METHOD_NOT_ALLOWED),
        (upload("text/plain", "hello"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Request::post("/thumbnails").body(Body::from("x")).expect("a request"), StatusCode::BAD_REQUEST),
        (upload("image/png", Body::empty()), StatusCode::BAD_REQUEST),
        (upload("image/png", b"plain text, not a PNG".to_vec()), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (upload("image/png", vec![0u8; 200_000]), StatusCode::PAYLOAD_TOO_LARGE),
        (multipart("file", &sample_image(image::ImageFormat::Png, 8, 8)), StatusCode::BAD_REQUEST),
    ];
    for (request, expected) in cases {
        let described = format!("{} {}", request.method(), request.uri());
        let (status, headers, body) = call(&router, request).await;
        assert_eq!(status, expected, "{described}: {}", String::from_utf8_lossy(&body));
        assert!(!message(&headers, &body).is_empty(), "{described}");
    }
}

#[tokio::test]
async fn the_upload_extractor_names_the_fields_it_found_and_a_good_image_meets_the_missing_services() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (router, _) = router(&dir);
    let png = sample_image(image::ImageFormat::Png, 16, 16);
    let (status, headers, body) = call(&router, multipart("file", &png)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = message(&headers, &body);
    assert!(text.contains("`image`") && text.contains("file"), "{text}");

    // A good image passes the extractor and the probe, and is refused only because Redis cannot be reached.
    let (status, headers, body) = call(&router, multipart("image", &png)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(message(&headers, &body).contains("redis"));
    assert!(std::fs::read_dir(dir.path().join("originals")).expect("the folder").next().is_none(), "nothing kept");
}

#[tokio::test]
async fn an_import_s_body_source_and_key_are_checked_before_anything_is_queued() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (router, _) = router(&dir);
    let json = |body: &str| upload("application/json", body.to_owned());
    let cases = [
        (json("{"), StatusCode::BAD_REQUEST, "malformed_body"),
        (json(r#"{"url": "https://a.example/b.jpg"}"#), StatusCode::BAD_REQUEST, "malformed_body"),
        (json(r#"{"source": "x", "key": "y"}"#), StatusCode::BAD_REQUEST, "malformed_body"),
        (json(&format!(r#"{{"key": "{}"}}"#, "k".repeat(20_000))), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        (json(r#"{"source": "ftp://a.example/b.jpg"}"#), StatusCode::BAD_REQUEST, "source_refused"),
        (json(r#"{"source": "file:///etc/passwd"}"#), StatusCode::BAD_REQUEST, "source_refused"),
        (json(r#"{"source": "http://127.0.0.1:6379/"}"#), StatusCode::BAD_REQUEST, "source_refused"),
        (json(r#"{"source": "http://169.254.169.254/latest/meta-data/"}"#), StatusCode::BAD_REQUEST, "source_refused"),
        (json(r#"{"source": "http://[::1]/a.jpg"}"#), StatusCode::BAD_REQUEST, "source_refused"),
        (json(r#"{"key": "photos/a.jpg"}"#), StatusCode::BAD_REQUEST, "imports_disabled"),
    ];
    for (request, expected, code) in cases {
        let (status, headers, body) = call(&router, request).await;
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
        message(&headers, &body);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["code"], code, "{json}");
    }
    // A URL the guard allows passes, and is refused only because Redis cannot be reached.
    let (status, _, body) = call(&router, json(r#"{"source": "https://images.example.com/a.jpg"}"#)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn a_stored_thumbnail_is_served_with_a_strong_etag_and_revalidated_with_304() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (router, files) = router(&dir);
    let name = ThumbnailName { id: TaskId::new(), format: OutputFormat::Png, rendition: None };
    let png = sample_image(image::ImageFormat::Png, 10, 10);
    files.put_thumbnail(&name, png.clone()).await.expect("stored");
    let path = format!("/thumbnails/{name}");

    let (status, headers, body) = call(&router, get(&path)).await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, png.as_slice()));
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    let etag = headers[header::ETAG].to_str().expect("ASCII").to_owned();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");

    let revalidate = |tag: &str| Request::get(&path).header(header::IF_NONE_MATCH, tag).body(Body::empty());
    let (status, headers, body) = call(&router, revalidate(&etag).expect("a request")).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(headers[header::ETAG], etag.as_str());
    let (status, ..) = call(&router, revalidate(&format!("\"other\", {etag}")).expect("a request")).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED, "any tag of a list matches");
    let (status, ..) = call(&router, revalidate("\"stale\"").expect("a request")).await;
    assert_eq!(status, StatusCode::OK);
}
