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

/// Drives the console at `url` in Chromium through playwright-core (`tests/support/console.mjs`) with `plan`; its
/// report: console errors, requests beyond the page's origin, task rows, the detail shown. Fails the test when the
/// plan could not be carried out.
pub async fn console(url: &str, plan: serde_json::Value) -> serde_json::Value {
    use crate::support::tools::{root, tool};
    let run = Command::new("node")
        .arg(root().join("tests/support/console.mjs"))
        .arg(tool("playwright"))
        .arg(url)
        .arg(plan.to_string())
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(90), run).await.expect("the browser finishes").expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value =
        stdout.lines().last().and_then(|line| serde_json::from_str(line).ok()).unwrap_or_else(|| {
            panic!("no report from the browser:\n{stdout}{}", String::from_utf8_lossy(&output.stderr))
        });
    assert!(output.status.success(), "the browser could not carry out {plan}: {report}");
    report
}
