//! Who may do what: API keys and scopes (401/403), the `keys` command, keys surviving a restart, the key file, and
//! rate limits (429) shared by every API process.

use image::ImageFormat;
use reqwest::{Method, StatusCode};
use thumbq_common::{
    TaskRecord,
    api_key::{Rate, RateLimit, Scopes, generate_key},
    fixtures::sample_image,
    settings::AuthMode,
    state_store::api_keys::KeySpec,
};

use crate::support::{
    TestApp, eventually,
    process::{ApiProcess, api_command},
    spawn_api_configured,
};

/// A request to `base` + `path`, with `key` as its bearer token when given.
async fn call(client: &reqwest::Client, method: Method, url: String, key: Option<&str>) -> reqwest::Response {
    let mut request = client.request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("the API answers")
}

/// An upload of a small JPEG with `key`.
async fn upload(app: &TestApp, key: Option<&str>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(sample_image(ImageFormat::Jpeg, 64, 48)).file_name("a.jpg");
    let mut request = app
        .client
        .post(format!("{}/thumbnails", app.base))
        .multipart(reqwest::multipart::Form::new().part("image", part));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("the API answers")
}

/// Creates a key named `name` with `scopes` straight in the app's Redis; returns the key.
async fn key(app: &TestApp, name: &str, scopes: &str, limit: Option<RateLimit>) -> String {
    let key = generate_key();
    let scopes: Scopes = scopes.parse().unwrap();
    app.states.create_key(&KeySpec { limit, ..KeySpec::new(name, scopes) }, &key, false).await.unwrap();
    key
}

async fn json_error(response: reqwest::Response) -> String {
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().expect("an error message").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_on_each_route_answers_by_scope() {
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    let (uploader, reader, admin) = (
        key(&app, "uploader", "upload", None).await,
        key(&app, "reader", "read", None).await,
        key(&app, "admin", "admin", None).await,
    );
    let url = |path: &str| format!("{}{path}", app.base);

    // No key, an unknown key, another scheme: 401 with a Bearer challenge and a JSON error; nothing stored.
    for bad in [None, Some("tq_not-a-key")] {
        let response = upload(&app, bad).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert!(json_error(response).await.contains("key"));
    }
    let basic = app.client.get(url("/tasks")).header("authorization", "Basic dXNlcjpwYXNz").send().await.unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "a refused upload keeps nothing");

    // The wrong scope: 403.
    assert_eq!(upload(&app, Some(&reader)).await.status(), StatusCode::FORBIDDEN);
    for path in ["/tasks", "/workers", "/stats", "/metrics"] {
        let response = call(&app.client, Method::GET, url(path), Some(&uploader)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(json_error(response).await.contains("scope"), "{path}");
        assert_eq!(call(&app.client, Method::GET, url(path), None).await.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in ["/workers", "/stats", "/metrics"] {
        assert_eq!(call(&app.client, Method::GET, url(path), Some(&reader)).await.status(), 403, "{path}");
        assert_eq!(call(&app.client, Method::GET, url(path), Some(&admin)).await.status(), 200, "{path}");
    }

    // The right scope: the upload is recorded as the uploader's; another key's read key does not see it, admin does.
    let response = upload(&app, Some(&uploader)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted: serde_json::Value = response.json().await.unwrap();
    let status_url: String = accepted["status_url"].as_str().unwrap().into();
    assert_eq!(call(&app.client, Method::GET, status_url.clone(), Some(&reader)).await.status(), 404);
    let task = call(&app.client, Method::GET, status_url, Some(&admin)).await;
    assert_eq!(task.status(), 200);
    assert_eq!(task.json::<TaskRecord>().await.unwrap().owner.as_deref(), Some("uploader"));
    assert_eq!(call(&app.client, Method::GET, url("/tasks"), Some(&reader)).await.status(), 200);

    // Open without a key: probes, docs, the dashboard page, and a thumbnail by its unguessable name.
    for path in ["/health", "/openapi.json", "/docs/", "/dashboard"] {
        assert_eq!(call(&app.client, Method::GET, url(path), None).await.status(), 200, "{path}");
    }
    let thumbnail = call(&app.client, Method::GET, accepted["url"].as_str().unwrap().into(), None).await;
    assert_eq!(thumbnail.status(), StatusCode::ACCEPTED, "no worker runs: the record says PENDING");

    // Revoked: refused at once.
    assert!(app.states.revoke_key("uploader").await.unwrap());
    assert_eq!(upload(&app, Some(&uploader)).await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_off_on_loopback_no_key_is_needed() {
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Off).await;
    assert_eq!(upload(&app, None).await.status(), StatusCode::ACCEPTED);
    for path in ["/tasks", "/workers", "/stats", "/metrics"] {
        assert_eq!(call(&app.client, Method::GET, format!("{}{path}", app.base), None).await.status(), 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_with_the_command_survive_an_api_restart_until_revoked() {
    // The in-process app is not called: it owns the queues, keys and store the API processes use, and removes them.
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    let settings = app.settings.clone();

    let (ok, out) =
        api_command(&settings, &["keys", "create", "--name", "ci", "--scopes", "read", "--rate", "5/s"]).await;
    assert!(ok, "{out}");
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("tq_") && key.len() == 46, "the key alone on the last line: {out}");
    let (ok, _) = api_command(&settings, &["keys", "create", "--name", "ci", "--scopes", "read"]).await;
    assert!(!ok, "names are unique");
    let (ok, _) = api_command(&settings, &["keys", "create", "--name", "x", "--scopes", "root"]).await;
    assert!(!ok, "unknown scopes are refused");

    let (ok, list) = api_command(&settings, &["keys", "list"]).await;
    assert!(ok && list.contains("ci") && list.contains("read") && list.contains("5/s"), "{list}");
    assert!(!list.contains(&key[3..]), "the key itself is never shown again");

    let client = reqwest::Client::new();
    for _ in 0..2 {
        let api = ApiProcess::spawn(&settings).await;
        let response = call(&client, Method::GET, format!("{}/tasks", api.base), Some(&key)).await;
        assert_eq!(response.status(), 200);
        api.kill().await;
    }
    let (ok, list) = api_command(&settings, &["keys", "list"]).await;
    assert!(ok && !list.contains("never"), "last use is recorded: {list}");

    let (ok, _) = api_command(&settings, &["keys", "revoke", "ci"]).await;
    assert!(ok);
    let api = ApiProcess::spawn(&settings).await;
    assert_eq!(call(&client, Method::GET, format!("{}/tasks", api.base), Some(&key)).await.status(), 401);
    let (ok, _) = api_command(&settings, &["keys", "revoke", "ci"]).await;
    assert!(!ok, "revoking an unknown key fails");
    api.kill().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_seeds_keys_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (file, key) = (dir.path().join("keys.json"), generate_key());
    let entry = serde_json::json!([{ "name": "from-file", "key": key, "scopes": "read,upload" }]);
    std::fs::write(&file, entry.to_string()).unwrap();
    let app = spawn_api_configured(|s| {
        s.access.auth = AuthMode::Keys;
        s.access.keys_file = Some(file.clone());
    })
    .await;
    // `spawn_api_configured` serves without `run`: seed as `run` does.
    let seeds = thumbq_api::key_file::read_key_file(&file, app.settings.access.key_rate).unwrap();
    thumbq_api::key_file::seed_keys(app.states.clone(), seeds).await;
    let url = format!("{}/tasks", app.base);
    eventually("the seeded key works", async || {
        call(&app.client, Method::GET, url.clone(), Some(&key)).await.status() == 200
    })
    .await;

    std::fs::write(&file, r#"[{"name": "weak", "key": "short", "scopes": "read"}]"#).unwrap();
    let err = thumbq_api::key_file::read_key_file(&file, app.settings.access.key_rate).unwrap_err();
    assert!(err.to_string().contains("at least"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_shared_by_two_api_processes() {
    // The in-process app is not called: it owns the queues, keys and store the API processes use, and removes them.
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    let settings = app.settings.clone();
    let states = &app.states;
    // One an hour after a burst of 5: nothing refills during the test.
    let limit = RateLimit { rate: "1/h".parse::<Rate>().unwrap(), burst: 5 };
    let key = generate_key();
    let spec = KeySpec { limit: Some(limit), ..KeySpec::new("limited", "read".parse().unwrap()) };
    states.create_key(&spec, &key, false).await.unwrap();

    let (a, b) = (ApiProcess::spawn(&settings).await, ApiProcess::spawn(&settings).await);
    let client = reqwest::Client::new();
    let mut remaining = Vec::new();
    for base in [&a.base, &a.base, &a.base, &b.base, &b.base] {
        let response = call(&client, Method::GET, format!("{base}/tasks"), Some(&key)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        remaining.push(response.headers()["ratelimit-remaining"].to_str().unwrap().to_owned());
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"], "one budget across both processes");
    for base in [&a.base, &b.base] {
        let response = call(&client, Method::GET, format!("{base}/tasks"), Some(&key)).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((3590..=3600).contains(&retry_after), "the next request an hour after the first (1/h): {retry_after}");
        assert_eq!(response.headers()["ratelimit-remaining"], "0");
        assert!(json_error(response).await.contains("rate limit"));
    }
    // Probes are never limited.
    assert_eq!(call(&client, Method::GET, format!("{}/health", a.base), None).await.status(), 200);
    a.kill().await;
    b.kill().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_the_limit_is_per_client_address() {
    let app =
        spawn_api_configured(|s| s.access.anonymous_rate = RateLimit { rate: "1/h".parse().unwrap(), burst: 3 }).await;
    let url = format!("{}/tasks", app.base);
    for expected in ["2", "1", "0"] {
        let response = call(&app.client, Method::GET, url.clone(), None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-remaining"], expected);
    }
    let refused = upload(&app, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(TestApp::files_in(&app.originals_dir()).is_empty(), "a refused upload keeps nothing");
    assert_eq!(call(&app.client, Method::GET, format!("{}/ready", app.base), None).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_quota_counts_unfinished_uploads_and_frees_as_they_end() {
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    let key = generate_key();
    let spec = KeySpec { quota_bytes: Some(1 << 20), ..KeySpec::new("quota", "upload,read".parse().unwrap()) };
    app.states.create_key(&spec, &key, false).await.unwrap();
    // About 430 KB each: noise does not compress.
    let mut seed = 7u32;
    let noisy = image::RgbImage::from_fn(380, 380, |_, _| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        image::Rgb([(seed >> 16) as u8, (seed >> 8) as u8, (seed >> 24) as u8])
    });
    let png = thumbq_common::fixtures::encode(&image::DynamicImage::ImageRgb8(noisy), ImageFormat::Png);
    assert!((400_000..524_288).contains(&png.len()), "{} bytes", png.len());
    let upload = async || {
        let form = reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(png.clone()));
        let response =
            app.client.post(format!("{}/thumbnails", app.base)).bearer_auth(&key).multipart(form).send().await.unwrap();
        let status = response.status();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };

    let (first, second) = (upload().await, upload().await);
    assert_eq!((first.0, second.0), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    let (status, refused) = upload().await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["code"], "over_quota", "{refused}");
    assert_eq!(TestApp::files_in(&app.originals_dir()).len(), 2, "nothing of the refused upload is kept");

    // One upload larger than the whole quota: waiting would never help, so it is a 413, not a 429.
    let small = KeySpec { quota_bytes: Some(100_000), ..KeySpec::new("small", "upload".parse().unwrap()) };
    let small_key = generate_key();
    app.states.create_key(&small, &small_key, false).await.unwrap();
    let form = reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(png.clone()));
    let whole = app
        .client
        .post(format!("{}/thumbnails", app.base))
        .bearer_auth(&small_key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = whole.json().await.unwrap();
    assert!(body["code"] == "too_large" && body["error"].as_str().unwrap().contains("whole storage quota"), "{body}");

    // A cancelled task frees its share at once.
    let cancel = app.client.delete(first.1["status_url"].as_str().unwrap()).bearer_auth(&key).send().await.unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    assert_eq!(upload().await.0, StatusCode::ACCEPTED);

    // Finished tasks free theirs.
    app.start_worker().await;
    let queue = app.settings.amqp.queue.clone();
    eventually("the worker finishes the tasks", async || app.queue_depth(&queue).await == 0).await;
    eventually("the quota is free again", async || upload().await.0 == StatusCode::ACCEPTED).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_may_be_left_open_for_a_scraper_while_everything_else_needs_a_key() {
    let app = spawn_api_configured(|s| {
        s.access.auth = AuthMode::Keys;
        s.access.metrics_open = true;
    })
    .await;
    let metrics = call(&app.client, Method::GET, format!("{}/metrics", app.base), None).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("thumbq_build_info"));
    for path in ["/stats", "/workers", "/tasks"] {
        assert_eq!(call(&app.client, Method::GET, format!("{}{path}", app.base), None).await.status(), 401, "{path}");
    }
    app.stop().await;
}
