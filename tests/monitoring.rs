//! `deploy/monitoring`: the alert rules pass their unit tests (promtool), the Prometheus configuration and every
//! Grafana query parse, and every metric they name is one that the API or a worker really exports.

use std::{collections::BTreeSet, process::Command};

use image::ImageFormat;
use thumbq_common::fixtures::sample_image;

use crate::support::{
    spawn_api_configured,
    tools::{root, succeeds, tool},
};

fn promtool() -> Command {
    Command::new(tool("prometheus/usr/bin/promtool"))
}

fn monitoring(file: &str) -> String {
    std::fs::read_to_string(root().join("deploy/monitoring").join(file)).unwrap()
}

/// The PromQL of every panel of the Grafana dashboard, with Grafana's `$__rate_interval` made a plain range.
fn dashboard_queries() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(&monitoring("grafana-dashboard.json")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let queries: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap().replace("$__rate_interval", "5m"))
        .collect();
    assert!(queries.len() >= panels.len(), "every panel has a query");
    queries
}

#[test]
fn alert_rules_pass_their_unit_tests_and_the_configuration_loads_them() {
    let dir = root().join("deploy/monitoring");
    succeeds(promtool().current_dir(&dir).args(["check", "rules", "alerts.yml"]));
    let tested = succeeds(promtool().current_dir(&dir).args(["test", "rules", "alerts.test.yml"]));
    assert!(String::from_utf8_lossy(&tested.stdout).contains("SUCCESS"));
    succeeds(promtool().current_dir(&dir).args(["check", "config", "prometheus.yml"]));
    // Each alert the issue asks for has a test case.
    let tests = monitoring("alerts.test.yml");
    for alert in ["QueueGrowing", "DeadLetters", "FailureRatioHigh", "NoWorkers", "UploadLatencyHigh", "ApiErrors"] {
        assert!(tests.contains(&format!("alertname: Thumbq{alert}")), "no test of Thumbq{alert}");
    }
}

#[test]
fn every_grafana_query_is_valid_promql() {
    // promtool parses PromQL only inside rule files: one recording rule per query.
    let rules: Vec<serde_json::Value> = dashboard_queries()
        .into_iter()
        .enumerate()
        .map(|(i, expr)| serde_json::json!({"record": format!("grafana:query_{i}"), "expr": expr}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queries.yml"); // JSON is YAML
    std::fs::write(&file, serde_json::json!({"groups": [{"name": "grafana", "rules": rules}]}).to_string()).unwrap();
    succeeds(promtool().args(["check", "rules"]).arg(&file));
}

/// Metric names (`thumbq_…`, `process_…`) in a text, without a histogram's `_bucket`, `_sum` or `_count`.
fn named_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["thumbq_", "process_"] {
        for (start, _) in text.match_indices(prefix) {
            let preceded =
                text[..start].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if preceded {
                continue; // part of a longer name, or a recording rule's (`thumbq:…`)
            }
            let name: String = text[start..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            names.insert(base.to_owned());
        }
    }
    names
}

/// The metric families of a Prometheus text exposition, from its `# TYPE` lines.
fn exported(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_api_configured(|s| s.worker.metrics = Some(([127, 0, 0, 1], port).into())).await;
    app.start_worker().await;
    // One task through, so that the latency histograms have their first samples.
    let task = app.upload_ok(sample_image(ImageFormat::Png, 40, 30), "").await;
    assert_eq!(app.wait_for_thumbnail(&task.name).await.status(), 200);
    let api = app.get("/metrics").await.text().await.unwrap();
    let worker = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    let mut available = exported(&api);
    available.extend(exported(&worker));

    let mut named = named_metrics(&monitoring("alerts.yml"));
    named.extend(dashboard_queries().iter().flat_map(|q| named_metrics(q)));
    assert!(named.len() >= 10, "{named:?}");
    let missing: Vec<&String> = named.iter().filter(|n| !available.contains(*n)).collect();
    assert!(missing.is_empty(), "named by deploy/monitoring but exported by neither process: {missing:?}");
    app.stop().await;
}
