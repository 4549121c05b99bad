//! `make send-image` as a user runs it, against a running API: with keys and signed URLs on, `KEY=` authenticates
//! the upload and the script follows the signed URL the answer gives to the thumbnail it saves; without a key it
//! stops with a message that says how to pass one.

use std::{path::Path, process::Output, time::Duration};

use thumbq_common::{
    api_key::{Scopes, generate_key},
    settings::{AuthMode, Secret, UrlSigning},
    state_store::api_keys::KeySpec,
};

use crate::support::{TestApp, spawn_api_configured};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs `deploy/native/send-image.sh` against `app`, with `KEY` when given, as `make send-image` does.
async fn send_image(app: &TestApp, key: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(Path::new(ROOT).join("deploy/native/send-image.sh"))
        .env("THUMBQ_PUBLIC_URL", &app.base)
        .env("KEY", key.unwrap_or(""))
        .env_remove("IMAGE")
        .env_remove("QUERY")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output()).await.expect("send-image finishes").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_image_uploads_with_a_key_and_follows_the_signed_url_to_the_thumbnail() {
    let app = spawn_api_configured(|s| {
        s.access.auth = AuthMode::Keys;
        s.access.signed_urls = Some(UrlSigning {
            key: Secret::new("a-test-signing-key-of-32-chars-at-least".into()),
            ttl: Duration::from_secs(600),
        });
    })
    .await;
    app.start_worker().await;

    let refused = send_image(&app, None).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("make send-image KEY="), "{refused:?}");

    let key = generate_key();
    app.states.create_key(&KeySpec::new("send-image", "upload".parse::<Scopes>().unwrap()), &key, false).await.unwrap();
    let sent = send_image(&app, Some(&key)).await;
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "{sent:?}");
    let answer: serde_json::Value = serde_json::from_str(stdout.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert!(answer["url"].as_str().unwrap().contains("&sig="), "the answer's URL is signed: {answer}");
    let saved = Path::new(ROOT).join(".run/thumbnails").join(answer["name"].as_str().unwrap());
    let bytes = std::fs::read(&saved).expect("the thumbnail is saved");
    std::fs::remove_file(&saved).unwrap();
    let thumbnail = image::load_from_memory(&bytes).expect("the saved thumbnail decodes");
    let id = answer["id"].as_str().unwrap().parse().unwrap();
    let record = app.states.get(id).await.unwrap().expect("the task's record");
    let made = record.result.expect("the task succeeded");
    assert_eq!((thumbnail.width(), thumbnail.height()), (made.width, made.height));
    app.stop().await;
}
