//! `make bench`, part 2: the whole system. The release `thumbq-api` and `thumbq-worker` binaries run as processes
//! (own queue, key prefix and store) on the RabbitMQ and Redis the environment names (`THUMBQ_AMQP_URL`,
//! `THUMBQ_REDIS_URL`; by default the local ones), whose CPU is read from the processes listening on their ports.
//! Clients upload the corpus' baseline JPEGs of 1-4 megapixels and long-poll each thumbnail. Prints images/s, latency
//! from upload to downloadable (p50, p99), peak resident memory of each process, and the per-task overhead (queue,
//! HTTP, Redis, storage) measured against the pipeline alone on the same files in the same run.
//!
//! Then the API's CPU per upload, parted in a run of its own: all uploads first, then their polls and downloads.
//!
//! A row may ask for renditions (`8x2x4`: 4 thumbnails of about 100 px per upload, one task, one decode): its CPU
//! per thumbnail shows what one durable message per upload costs once several thumbnails share it.
//!
//! Knobs, for `bench/scaling.sh`: `THUMBQ_BENCH_ROWS` (`clients x workers [x renditions]`, comma-separated;
//! default `1x1,8x1,8x2,16x2,8x2x4`); an `s3://` `THUMBQ_STORE_URL` in the environment (with `THUMBQ_S3_ENDPOINT` and `AWS_*`)
//! puts the store there, under a prefix of the run's own; a comma-separated `THUMBQ_AMQP_URL` counts the CPU of
//! every node; `THUMBQ_BENCH_S3_LOG`, the S3 server's request log, counts S3 requests per task.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[path = "../support/services.rs"]
mod services;

use thumbq_common::{
    Settings,
    broker::Topology,
    task::{Fit, OutputFormat, ResizeArgs},
};

/// Uploads per configuration.
const UPLOADS: usize = 400;

fn main() {
    let release =
        std::env::current_exe().expect("bench path").parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let corpus = std::env::var("THUMBQ_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/corpus"));
    let images = photos(&corpus.join("jpeg"));
    if images.is_empty() || !release.join("thumbq-api").exists() {
        println!("end to end: needs bench/corpus (bench/corpus.sh) and release binaries (cargo build --release)");
        return;
    }
    let pipeline_ms = pipeline_cost(&images);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    println!(
        "\nEnd to end: {} baseline JPEGs of 1-4 MP (avg {:.2} MB), {UPLOADS} uploads per row, 100x100 cover JPEG.",
        images.len(),
        images.iter().map(Vec::len).sum::<usize>() as f64 / images.len() as f64 / 1e6
    );
    println!("Pipeline alone, same files, this run: {pipeline_ms:.1} ms per image on one core.");
    let rendition_ms = rendition_cost(&images, RENDITIONS.len());
    println!(
        "Pipeline alone, {} renditions from one decode: {rendition_ms:.1} ms per image, {:.1} per thumbnail.",
        RENDITIONS.len(),
        rendition_ms / RENDITIONS.len() as f64
    );
    println!(
        "{:>7} {:>7} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>14}",
        "clients",
        "workers",
        "thumbs",
        "img/s",
        "p50 ms",
        "p99 ms",
        "cpu ms",
        "cpu/thumb",
        "API MB",
        "worker MB",
        "overhead/task"
    );
    let cpu_rows = Mutex::new(Vec::new());
    for (clients, workers, renditions) in rows() {
        let load = Load { clients, workers, renditions, uploads: UPLOADS, split: false };
        let row = runtime.block_on(run(&release, &images, load));
        let label =
            if renditions > 1 { format!("{clients}x{workers}x{renditions}") } else { format!("{clients}x{workers}") };
        cpu_rows
            .lock()
            .expect("rows")
            .push((label, Counts { cpu: row.cpu, redis_commands: row.redis_commands, s3_requests: row.s3_requests }));
        // Every process shares this machine's cores: CPU time per task = cores × wall time / tasks.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cpu_ms = cores * 1000.0 / row.per_second;
        let alone = if renditions > 1 { rendition_ms } else { pipeline_ms };
        println!(
            "{clients:>7} {workers:>7} {renditions:>6} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2} {:>10.1} {:>10.1} {:>13.0}%",
            row.per_second,
            row.p50,
            row.p99,
            cpu_ms,
            cpu_ms / renditions as f64,
            row.api_mb,
            row.worker_mb,
            (cpu_ms - alone) / alone * 100.0,
        );
    }
    println!(
        "cpu ms: machine time per task (cores x wall / tasks), RabbitMQ and Redis included; overhead: cpu ms vs pipeline."
    );
    println!("\nPer task: Redis commands (INFO total_commands_processed), S3 requests (THUMBQ_BENCH_S3_LOG lines):");
    println!("{:>15} {:>12} {:>12}", "clients x workers", "Redis cmds", "S3 requests");
    for (label, row) in cpu_rows.lock().expect("rows").iter() {
        let s3 = row.s3_requests.map_or("-".to_owned(), |r| format!("{r:.2}"));
        println!("{label:>15} {:>12.1} {s3:>12}", row.redis_commands);
    }
    println!("\nCPU ms per task, by process (user + system, from /proc/<pid>/stat):");
    println!(
        "{:>15} {:>8} {:>8} {:>9} {:>8} {:>8}",
        "clients x workers", "API", "workers", "RabbitMQ", "Redis", "clients"
    );
    for (label, Counts { cpu, .. }) in cpu_rows.lock().expect("rows").iter() {
        println!("{label:>15} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>8.2}", cpu[0], cpu[1], cpu[2], cpu[3], cpu[4]);
    }
    api_split(&runtime, &release, &images, pipeline_ms);
    every_format(&runtime, &release, &corpus);
}

/// The API's CPU per upload, parted: the upload request (body, header probe, original stored, record, publish with
/// confirm) and the client's long poll and download of the thumbnail, measured in two phases of one run (8
/// clients, 2 workers), against the pipeline alone on the same files.
fn api_split(runtime: &tokio::runtime::Runtime, release: &Path, images: &[Vec<u8>], pipeline_ms: f64) {
    let load = Load { clients: 8, workers: 2, renditions: 1, uploads: UPLOADS, split: true };
    let row = runtime.block_on(run(release, images, load));
    let poll = row.cpu[0] - row.api_uploads;
    println!("\nAPI CPU per upload, in two phases (8 clients upload all {UPLOADS}, then long-poll and download each):");
    println!("{:>12} {:>12} {:>12} {:>12} {:>14}", "upload ms", "poll+get ms", "API ms", "pipeline ms", "API/pipeline");
    println!(
        "{:>12.2} {:>12.2} {:>12.2} {:>12.1} {:>14.2}",
        row.api_uploads,
        poll,
        row.cpu[0],
        pipeline_ms,
        row.cpu[0] / pipeline_ms
    );
    println!("(upload alone / pipeline: {:.2})", row.api_uploads / pipeline_ms);
}

/// Every corpus file (JPEG baseline and progressive up to 18 MP, PNG, 16-MP WebP), twice, from 8 clients to 2 fresh
/// workers: the mixed load's throughput, latency and peak memory per process.
fn every_format(runtime: &tokio::runtime::Runtime, release: &Path, corpus: &Path) {
    let files: Vec<Vec<u8>> = ["jpeg", "png", "webp"]
        .iter()
        .flat_map(|dir| list(&corpus.join(dir)))
        .filter_map(|f| std::fs::read(f).ok())
        .collect();
    let megabytes = files.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let load = Load { clients: 8, workers: 2, renditions: 1, uploads: 2 * files.len(), split: false };
    let row = runtime.block_on(run(release, &files, load));
    println!(
        "\nEvery corpus format: {} files ({megabytes:.1} MB: JPEG, PNG, WebP), each uploaded twice by 8 clients, 2 workers:",
        files.len()
    );
    println!(
        "{:>8} {:>9} {:>9} {:>10} {:>10} {:>13}",
        "img/s", "p50 ms", "p99 ms", "API MB", "worker MB", "API cpu ms"
    );
    println!(
        "{:>8.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>13.2}",
        row.per_second, row.p50, row.p99, row.api_mb, row.worker_mb, row.cpu[0]
    );
}

/// The files of a folder, sorted.
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files
}

/// Baseline JPEGs of 1 to 4 megapixels.
fn photos(dir: &Path) -> Vec<Vec<u8>> {
    list(dir)
        .into_iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter(|bytes| {
            turbojpeg::read_header(bytes).is_ok_and(|h| {
                let megapixels = (h.width * h.height) as f64 / 1e6;
                !h.is_progressive && (1.0..=4.2).contains(&megapixels)
            })
        })
        .collect()
}

/// The sizes of a row with renditions, first ones first: thumbnails of about 100 px, as a list view and its
/// high-density variants would ask.
const RENDITIONS: [&str; 4] = ["100x100", "120x90", "90x120", "128x128"];

/// Mean ms of the pipeline alone per image, one core.
fn pipeline_cost(images: &[Vec<u8>]) -> f64 {
    rendition_cost(images, 1)
}

/// Mean ms of the pipeline alone per image making the first `count` of [`RENDITIONS`] from one decode, one core.
fn rendition_cost(images: &[Vec<u8>], count: usize) -> f64 {
    let outputs: Vec<ResizeArgs> = RENDITIONS[..count]
        .iter()
        .map(|size| {
            let (width, height) = size.split_once('x').expect("a size");
            let (width, height) = (width.parse().expect("width"), height.parse().expect("height"));
            ResizeArgs::new(width, height, Fit::Cover, OutputFormat::Jpeg)
        })
        .collect();
    let outputs = if count == 1 { vec![ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg)] } else { outputs };
    let started = Instant::now();
    for _ in 0..5 {
        for image in images {
            let limits = thumbq_worker::pipeline::Limits::pixels(u64::MAX);
            std::hint::black_box(
                thumbq_worker::pipeline::make_thumbnails(image, &outputs, limits).expect("thumbnails"),
            );
        }
    }
    started.elapsed().as_secs_f64() * 1000.0 / (5 * images.len()) as f64
}

/// What each row counted, per task.
struct Counts {
    cpu: [f64; 5],
    redis_commands: f64,
    s3_requests: Option<f64>,
}

/// `THUMBQ_BENCH_ROWS`: `clients x workers [x renditions]`.
fn rows() -> Vec<(usize, usize, usize)> {
    let rows = std::env::var("THUMBQ_BENCH_ROWS").unwrap_or_else(|_| "1x1,8x1,8x2,16x2,8x2x4".into());
    rows.split(',')
        .filter_map(|row| {
            let mut numbers = row.trim().split('x').map(str::parse::<usize>);
            let (clients, workers) = (numbers.next()?.ok()?, numbers.next()?.ok()?);
            let renditions = numbers.next().map_or(Some(1), Result::ok)?.clamp(1, RENDITIONS.len());
            Some((clients, workers, renditions))
        })
        .collect()
}

/// Commands Redis has processed since it started.
async fn redis_commands(url: &str) -> f64 {
    let info: String = async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("INFO").arg("stats").query_async(&mut conn).await.ok()
    }
    .await
    .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Requests in the S3 server's log (`THUMBQ_BENCH_S3_LOG`), if one is named.
fn s3_requests() -> Option<f64> {
    let log = std::fs::read_to_string(std::env::var("THUMBQ_BENCH_S3_LOG").ok()?).ok()?;
    Some(log.lines().filter(|l| l.contains(" HTTP/1.1\" ")).count() as f64)
}

struct Row {
    redis_commands: f64,
    s3_requests: Option<f64>,
    per_second: f64,
    p50: f64,
    p99: f64,
    api_mb: f64,
    worker_mb: f64,
    /// CPU ms per task of: API, workers (all), RabbitMQ, Redis, the benchmark's clients.
    cpu: [f64; 5],
    /// The API's CPU ms per task until the last upload was answered (with `split`: the uploads alone).
    api_uploads: f64,
}

/// CPU time (user + system) of a process so far, in ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks * 10.0 // USER_HZ is 100 on Linux
}

/// The pid of the process listening on the port of `url` (the broker or Redis the settings name), from `ss`.
fn listener_pid(url: &str) -> Option<u32> {
    let port = services::address_of(url).port();
    let out = Command::new("ss").args(["-Htlnp", &format!("sport = :{port}")]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("pid=").nth(1)?.split(',').next()?.parse().ok()
}

/// One row's load: who uploads what.
#[derive(Clone, Copy)]
struct Load {
    clients: usize,
    workers: usize,
    renditions: usize,
    uploads: usize,
    /// Upload everything first, then long-poll and download: the API's CPU of each phase on its own.
    split: bool,
}

async fn run(release: &Path, images: &[Vec<u8>], load: Load) -> Row {
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/ready")).send().await.map_or(true, |r| r.status() != 200) {
        assert!(Instant::now() < deadline, "the API did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

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

/// Peak resident memory (VmHWM) of a process, in MB.
fn peak_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}
