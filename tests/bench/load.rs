//! One row of the bench: the release binaries as processes on a queue, key prefix and store of the row's own,
//! clients uploading and long-polling, and the figures of the run.

use std::{
    path::Path,
    process::Child,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::{
    corpus::RENDITIONS,
    measure::{cpu_ms, listener_pid, peak_mb, redis_commands, redis_nodes, s3_requests},
    services,
    stack::Stack,
};

/// The figures of one row.
pub struct Row {
    /// Redis commands per task.
    pub redis_commands: f64,
    /// Bytes Redis holds per task for the row's keys once all are done (`MEMORY USAGE`; a Redis Cluster's
    /// primaries, not their replicas' copies).
    pub redis_bytes: f64,
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
    /// CPU ms per task of: API, workers (all), RabbitMQ (every node), Redis (the primaries), the benchmark's
    /// clients, Redis's replicas.
    pub cpu: [f64; 6],
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
    let stack = Stack::start(release, load.workers, &[]).await;
    let row = drive(&stack, images, load).await;
    stack.stop().await;
    row
}

/// Drives the load on `stack` (whose workers are `load.workers`) and reads the figures.
pub async fn drive(stack: &Stack, images: &[Vec<u8>], load: Load) -> Row {
    let Load { clients, workers, renditions, uploads, split } = load;
    let (settings, base, client) = (&stack.settings, stack.base.clone(), reqwest::Client::new());

    // Every RabbitMQ node of a cluster counts; Redis's primaries (the URL's node, or a Redis Cluster's), whose one
    // thread each is what runs out, apart from their replicas.
    let brokers: Vec<u32> = settings.amqp.nodes().into_iter().filter_map(listener_pid).collect();
    let (primaries, replicas) = redis_nodes(&settings.redis).await;
    let pids = |urls: &[String]| -> Vec<u32> { urls.iter().filter_map(|url| listener_pid(url)).collect() };
    let (redis, redis_replicas) = (pids(&primaries), pids(&replicas));
    let total = |pids: &[u32]| -> f64 { pids.iter().copied().map(cpu_ms).sum() };
    let measure = || -> Vec<f64> {
        std::iter::once(stack.api.id())
            .chain(stack.workers.iter().map(Child::id))
            .map(cpu_ms)
            .chain([total(&brokers), total(&redis), cpu_ms(std::process::id()), total(&redis_replicas)])
            .collect()
    };
    let commands = async || {
        let mut total = 0.0;
        for url in &primaries {
            total += redis_commands(url).await;
        }
        total
    };
    let cpu_before = measure();
    let (redis_before, s3_before) = (commands().await, s3_requests());
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
                let url = upload(&client, &format!("{base}/thumbnails{query}"), images[i % images.len()].clone()).await;
                if split {
                    // The latency of a split row is the upload's alone.
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    urls.lock().expect("urls").push(url);
                    continue;
                }
                download(&client, url).await;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        });
    }
    let mut latencies: Vec<f64> = tasks.join_all().await.into_iter().flatten().collect();
    let wall = started.elapsed();
    // The split: the same uploads' long polls and downloads, after the API's CPU for the uploads alone was read.
    let api_after_uploads = cpu_ms(stack.api.id());
    if split {
        let urls = Arc::new(Mutex::new(std::mem::take(&mut *urls.lock().expect("urls"))));
        let mut polls = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (urls, client) = (urls.clone(), client.clone());
            polls.spawn(async move {
                loop {
                    let Some(url) = urls.lock().expect("urls").pop() else { return };
                    download(&client, url).await;
                }
            });
        }
        polls.join_all().await;
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let worker_mb = stack.workers.iter().map(|w| peak_mb(w.id())).fold(0.0, f64::max);
    let cpu_after = measure();
    let redis_used = (commands().await - redis_before) / uploads as f64;
    let redis_bytes = services::bytes_under(&settings.redis).await.unwrap_or_default() as f64 / uploads as f64;
    let s3_used = s3_requests().zip(s3_before).map(|(after, before)| (after - before) / uploads as f64);
    let used: Vec<f64> = cpu_after.iter().zip(&cpu_before).map(|(a, b)| (a - b) / uploads as f64).collect();
    let workers_cpu: f64 = used[1..=workers].iter().sum();
    let cpu = [used[0], workers_cpu, used[workers + 1], used[workers + 2], used[workers + 3], used[workers + 4]];
    let api_uploads = (api_after_uploads - cpu_before[0]) / uploads as f64;
    Row {
        redis_commands: redis_used,
        redis_bytes,
        s3_requests: s3_used,
        per_second: uploads as f64 / wall.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        api_mb: peak_mb(stack.api.id()),
        worker_mb,
        cpu,
        api_uploads,
    }
}

/// Uploads `image` to `url` (`…/thumbnails?…`), asserting `202`: the URL that long-polls its thumbnail.
pub async fn upload(client: &reqwest::Client, url: &str, image: Vec<u8>) -> String {
    let response =
        client.post(url).header("content-type", "application/octet-stream").body(image).send().await.expect("upload");
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.expect("json");
    format!("{}?wait=30", accepted["url"].as_str().expect("url"))
}

/// Long-polls and downloads a thumbnail, asserting `200`.
pub async fn download(client: &reqwest::Client, url: String) {
    let thumbnail = client.get(url).send().await.expect("download");
    assert_eq!(thumbnail.status(), 200);
    thumbnail.bytes().await.expect("bytes");
}
