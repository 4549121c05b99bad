//! The OpenAPI document and the Swagger UI. The document is snapshotted in `api/openapi.json` so every API change
//! shows up in review; `UPDATE_SNAPSHOTS=1 cargo test` rewrites it.

use axum::{body::Body, http::Request};
use tower::ServiceExt;

use crate::support::{spawn_api, spawn_api_configured};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_reviewed_snapshot() {
    let app = spawn_api().await;
    let served: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let reviewed = std::fs::read_to_string(SNAPSHOT).expect("api/openapi.json exists (UPDATE_SNAPSHOTS=1 writes it)");
    if let Some((line, (served, reviewed))) =
        pretty.lines().zip(reviewed.lines()).enumerate().find(|(_, (a, b))| a != b)
    {
        panic!(
            "the OpenAPI document changed at line {}: served {served:?}, reviewed {reviewed:?}; review it and run UPDATE_SNAPSHOTS=1 cargo test",
            line + 1
        );
    }
    assert_eq!(
        pretty.len(),
        reviewed.len(),
        "the OpenAPI document changed: review it, then UPDATE_SNAPSHOTS=1 cargo test"
    );

    for (path, method) in [
        ("/thumbnails", "post"),
        ("/thumbnails/{name}", "get"),
        ("/tasks/{id}", "get"),
        ("/health", "get"),
        ("/ready", "get"),
    ] {
        let operation = &served["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
    }
    // As strict as the server: what it refuses, the document says it refuses.
    let id = &served["paths"]["/tasks/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["format"], "uuid", "{id}");
    let name = &served["paths"]["/thumbnails/{name}"]["get"]["parameters"][0]["schema"];
    assert!(name["pattern"].as_str().is_some_and(|p| p.contains("png|jpg|webp")), "{name}");
    assert_eq!(served["components"]["schemas"]["UploadForm"]["properties"]["image"]["minLength"], 1);
    let upload = &served["paths"]["/thumbnails"]["post"];
    for status in ["413", "503"] {
        let example = upload["responses"][status]["content"]["application/json"]["example"]["error"].to_string();
        assert!(!example.contains("not an image") && example.len() > 10, "{status}: {example}");
    }
    for status in ["202", "400", "413", "415", "422", "503"] {
        assert!(upload["responses"][status].is_object(), "POST /thumbnails does not document {status}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_from_the_binary_without_external_requests() {
    let app = spawn_api().await;
    let store = app.store.clone();
    let state = thumbq_api::state::AppState::new(app.settings.clone(), store, Default::default()).unwrap();
    let router = thumbq_api::app(state);
    let response = router.clone().oneshot(Request::get("/docs/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let html = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://") && !html.contains("http://"), "the page loads nothing from elsewhere: {html}");
    let script = router.oneshot(Request::get("/docs/swagger-ui-bundle.js").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(script.status(), 200, "the Swagger UI bundle is vendored into the binary");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_the_running_configuration() {
    let operation = |doc: &serde_json::Value, path: &str, method: &str| doc["paths"][path][method].clone();
    let names = |op: &serde_json::Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .map_or_else(Vec::new, |p| p.iter().map(|p| p["name"].as_str().unwrap().into()).collect())
    };

    // The default (keys off, no webhook secret, no signed URLs): nothing a client could not use.
    let app = spawn_api().await;
    let plain: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    app.stop().await;
    let upload = operation(&plain, "/thumbnails", "post");
    assert!(upload["security"].is_null() && upload["responses"]["401"].is_null(), "{upload}");
    assert!(!names(&upload).contains(&"callback_url".into()), "no webhooks without THUMBQ_WEBHOOK_SECRET");
    let download = names(&operation(&plain, "/thumbnails/{name}", "get"));
    assert!(!download.contains(&"sig".into()) && !download.contains(&"expires".into()), "{download:?}");
    assert!(plain["components"]["securitySchemes"]["api_key"].is_null());

    // Keys, webhooks and signed URLs on: each appears where it applies.
    let app = spawn_api_configured(|s| {
        s.access.auth = thumbq_common::settings::AuthMode::Keys;
        s.webhook.secret = Some(thumbq_common::settings::Secret::new("a-webhook-secret".into()));
        s.access.signed_urls = Some(thumbq_common::settings::UrlSigning {
            key: thumbq_common::settings::Secret::new("a-test-signing-key-of-32-chars-at-least".into()),
            ttl: std::time::Duration::from_secs(60),
        });
    })
    .await;
    let full: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    app.stop().await;
    let upload = operation(&full, "/thumbnails", "post");
    assert_eq!(upload["security"][0]["api_key"][0], "upload");
    assert!(upload["responses"]["401"].is_object());
    assert!(names(&upload).contains(&"callback_url".into()));
    let download = names(&operation(&full, "/thumbnails/{name}", "get"));
    assert!(download.contains(&"sig".into()) && download.contains(&"expires".into()), "{download:?}");
    assert!(full["components"]["securitySchemes"]["api_key"].is_object());
}
