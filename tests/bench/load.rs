//! One row of the bench: the release binaries as processes on a queue, key prefix and store of the row's own,
//! clients uploading and long-polling, and the figures of the run.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use thumbq_common::{Settings, broker::Topology};

use crate::{
    corpus::RENDITIONS,
    measure::{cpu_ms, listener_pid, peak_mb, redis_commands, s3_requests},
    services,
    wait::Wait,
};

/// The figures of one row.
pub struct Row {
    /// Redis commands per task.
    pub redis_commands: f64,
    /// S3 requests per task, when the S3 server's log is named.
    pub s3_requests: Option<f64>,
    /// Uploads finished per second of wall time.
    pub per_second: f64,
    /// Median latency from upload to downloaded thumbnail, ms.
    pub p50: f64,
    /// 99th percentile of the same, ms.
    pub p99: f64,
    /// Peak resident memory of the API, MB.
    pub api_mb: f64,
    /// Peak resident memory of the largest worker, MB.
    pub worker_mb: f64,
    /// CPU ms per task of: API, workers (all), RabbitMQ, Redis, the benchmark's clients.
    pub cpu: [f64; 5],
    /// The API's CPU ms per task until the last upload was answered (with `split`: the uploads alone).
    pub api_uploads: f64,
}

/// One row's load: who uploads what.
#[derive(Clone, Copy)]
pub struct Load {
    /// Concurrent clients.
    pub clients: usize,
    /// Worker processes.
    pub workers: usize,
    /// Thumbnails per upload (the first of [`RENDITIONS`]), 1 for a plain upload.
    pub renditions: usize,
    /// Uploads in the row.
    pub uploads: usize,
    /// Upload everything first, then long-poll and download: the API's CPU of each phase on its own.
    pub split: bool,
}

/// Runs one row: starts the processes, drives the load, reads the figures, stops and cleans up.
pub async fn run(release: &Path, images: &[Vec<u8>], load: Load) -> Row {
    let Load { clients, workers, renditions, uploads, split } = load;
    let store = tempfile::tempdir().expect("a store");
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
    // An object store named by the environment gets a prefix of this row's own; else a temporary folder.
    let store_url = match std::env::var("THUMBQ_STORE_URL") {
        Ok(url) if url.starts_with("s3://") => format!("{}/bench-{unique}", url.trim_end_matches('/')),
        _ => store.path().display().to_string(),
    };
    let env = [
        ("THUMBQ_QUEUE", format!("thumbq-bench.{unique}")),
        ("THUMBQ_KEY_PREFIX", format!("thumbq-bench:{unique}:")),
        ("THUMBQ_STORE_URL", store_url),
        ("THUMBQ_BIND", format!("127.0.0.1:{port}")),
        ("THUMBQ_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("THUMBQ_RESULT_TTL_SECS", "600".into()),
        ("THUMBQ_WORKER_METRICS_PORT", "0".into()),
        ("THUMBQ_LOG", "warn".into()),
        // The load comes from one address, far past a per-client limit: the bench measures the pipeline.
        ("THUMBQ_ANON_RATE_LIMIT", "off".into()),
    ];
    // What the binaries will read: this row's variables over the bench's own environment (THUMBQ_AMQP_URL, say).
    let settings = Settings::from_lookup(|var| {
        env.iter().find(|(name, _)| *name == var).map(|(_, value)| value.clone()).or_else(|| std::env::var(var).ok())
    })
    .expect("valid settings");
    let spawn = |binary: &str, extra: &[(&str, String)]| -> Child {
        Command::new(release.join(binary))
            .envs(env.iter().cloned())
            .envs(extra.iter().cloned())
            .stdout(Stdio::null())
            .spawn()
            .expect("binary starts")
    };
    let mut api = spawn("thumbq-api", &[]);
    let mut worker_processes: Vec<Child> = (0..workers).map(|_| spawn("thumbq-worker", &[])).collect();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = async || client.get(format!("{base}/ready")).send().await.is_ok_and(|r| r.status() == 200);
    Wait::new("the API becomes ready").every(Duration::from_millis(100)).until(ready).await;

    // Every RabbitMQ node of a cluster counts; the Redis named by the URL (the primary, with sentinels).
    let brokers: Vec<u32> = settings.amqp.nodes().into_iter().filter_map(listener_pid).collect();
    let others = [listener_pid(&settings.redis.url), Some(std::process::id())];
    let measure = || -> Vec<f64> {
        std::iter::once(api.id())
            .chain(worker_processes.iter().map(Child::id))
            .map(cpu_ms)
            .chain(std::iter::once(brokers.iter().copied().map(cpu_ms).sum()))
            .chain(others.iter().map(|p| p.map_or(0.0, cpu_ms)))
            .collect()
    };
    let cpu_before = measure();
    let (redis_before, s3_before) = (redis_commands(&settings.redis.url).await, s3_requests());
    let next = Arc::new(Mutex::new(0usize));
    let images = Arc::new(images.to_vec());
    // One thumbnail, or renditions: the task ends when all are stored, so waiting for the first waits for all.
    let query = if renditions > 1 { format!("?sizes={}", RENDITIONS[..renditions].join(",")) } else { String::new() };
    // With `split`, uploads only; their thumbnails' URLs wait here for the second phase.
    let urls = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (next, images, client, base) = (next.clone(), images.clone(), client.clone(), base.clone());
        let (query, urls) = (query.clone(), urls.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = {
                    let mut next = next.lock().expect("counter");
                    *next += 1;
                    *next - 1
                };
                if i >= uploads {
                    return latencies;
                }
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/thumbnails{query}"))
                    .header("content-type", "application/octet-stream")
                    .body(images[i % images.len()].clone())
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(response.status(), 202);
                let accepted: serde_json::Value = response.json().await.expect("json");
                let url = format!("{}?wait=30", accepted["url"].as_str().expect("url"));
                if split {
                    // The latency of a split row is the upload's alone.
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    urls.lock().expect("urls").push(url);
                    continue;
                }
                let thumbnail = client.get(url).send().await.expect("download");
                assert_eq!(thumbnail.status(), 200);
                thumbnail.bytes().await.expect("bytes");
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        });
    }
    let mut latencies: Vec<f64> = tasks.join_all().await.into_iter().flatten().collect();
    let wall = started.elapsed();
    // The split: the same uploads' long polls and downloads, after the API's CPU for the uploads alone was read.
    let api_after_uploads = cpu_ms(api.id());
    if split {
        let urls = Arc::new(Mutex::new(std::mem::take(&mut *urls.lock().expect("urls"))));
        let mut polls = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (urls, client) = (urls.clone(), client.clone());
            polls.spawn(async move {
                loop {
                    let Some(url) = urls.lock().expect("urls").pop() else { return };
                    let thumbnail = client.get(url).send().await.expect("download");
                    assert_eq!(thumbnail.status(), 200);
                    thumbnail.bytes().await.expect("bytes");
                }
            });
        }
        polls.join_all().await;
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let worker_mb = worker_processes.iter().map(|w| peak_mb(w.id())).fold(0.0, f64::max);
    let cpu_after = measure();
    let redis_used = (redis_commands(&settings.redis.url).await - redis_before) / uploads as f64;
    let s3_used = s3_requests().zip(s3_before).map(|(after, before)| (after - before) / uploads as f64);
    let used: Vec<f64> = cpu_after.iter().zip(&cpu_before).map(|(a, b)| (a - b) / uploads as f64).collect();
    let workers_cpu: f64 = used[1..=workers].iter().sum();
    let cpu = [used[0], workers_cpu, used[workers + 1], used[workers + 2], used[workers + 3]];
    let api_uploads = (api_after_uploads - cpu_before[0]) / uploads as f64;
    let row = Row {
        redis_commands: redis_used,
        s3_requests: s3_used,
        per_second: uploads as f64 / wall.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        api_mb: peak_mb(api.id()),
        worker_mb,
        cpu,
        api_uploads,
    };
    for child in worker_processes.iter_mut().chain(std::iter::once(&mut api)) {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    services::delete_queues(&settings.amqp, &Topology::new(&settings.amqp, &settings.retry).queue_names()).await;
    services::delete_keys(&settings.redis).await;
    row
}
