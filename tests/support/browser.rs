//! Headless Chromium (installed by `deploy/native/test-tools.sh`), for the tests of pages a person opens.

use std::time::Duration;

use tokio::process::Command;

/// Headless Chromium with the flags this machine's closed network needs; `extra` picks the output.
pub async fn chromium(url: &str, extra: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let run = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=6000")
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("chromium finishes").expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}
