//! The jobs bench's runs: a library filled in the import store, a job over it timed against one-by-one uploads,
//! and interactive uploads measured idle and beside a job.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use thumbq_common::{
    job::{JobId, item_id},
    task::Import,
};

use crate::{
    load::{Load, download, drive, upload},
    measure::cpu_ms,
    s3::S3Server,
    services::bytes_under,
    stack::Stack,
    wait::Wait,
};

/// The job's (and the uploads') parameters: the end-to-end rows' default thumbnail, spelled out.
const QUERY: &str = "width=100&height=100&fit=cover&format=jpeg";

/// How long a job item's record is kept in the bench, so that its memory is measured once it has expired too.
const ITEM_TTL_SECS: u64 = 20;

/// Where the library lives.
#[derive(Clone, Copy)]
pub enum Library {
    /// A folder (`THUMBQ_IMPORT_URL=/path`), with the file store in a folder too.
    Folder,
    /// A moto server's bucket (`s3://bucket/library`), with the file store in the same bucket.
    S3,
}

impl Library {
    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::S3 => "S3",
        }
    }
}

/// The figures of one store's row.
pub struct JobRow {
    pub uploads_per_second: f64,
    pub items_per_second: f64,
    pub api_ms_per_upload: f64,
    pub api_ms_per_item: f64,
    pub redis_bytes_kept: f64,
    pub redis_bytes_expired: f64,
}

/// The photos made web-sized: 640x480 JPEGs of quality 85, as most of a site's library is.
pub fn web_sized(photos: &[Vec<u8>]) -> Vec<Vec<u8>> {
    photos
        .iter()
        .map(|bytes| {
            let small = image::load_from_memory(bytes).expect("a photo").resize_to_fill(
                640,
                480,
                image::imageops::FilterType::Triangle,
            );
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
                .encode_image(&small.to_rgb8())
                .expect("a JPEG");
            out
        })
        .collect()
}

/// A library of `count` images (`images` repeated) under `bench/` of the import store, and the variables that
/// name it (and the file store beside it) to the API and the workers.
struct Filled {
    env: Vec<(&'static str, String)>,
    _folder: tempfile::TempDir,
    _s3: Option<S3Server>,
}

async fn fill(library: Library, images: &[Vec<u8>], count: usize) -> Filled {
    let folder = tempfile::tempdir().expect("a library folder");
    match library {
        Library::Folder => {
            let dir = folder.path().join("bench");
            std::fs::create_dir_all(&dir).expect("the folder");
            // Each distinct image written once and hard-linked: 10,000 items without 10,000 copies.
            for (i, bytes) in images.iter().enumerate() {
                std::fs::write(folder.path().join(format!("{i}.jpg")), bytes).expect("an image");
            }
            for i in 0..count {
                let source = folder.path().join(format!("{}.jpg", i % images.len()));
                std::fs::hard_link(source, dir.join(format!("{i:05}.jpg"))).expect("a link");
            }
            let env = vec![("THUMBQ_IMPORT_URL", folder.path().display().to_string())];
            Filled { env, _folder: folder, _s3: None }
        }
        Library::S3 => {
            let s3 = S3Server::start().await;
            let client = reqwest::Client::new();
            let images = Arc::new(images.to_vec());
            let mut puts = tokio::task::JoinSet::new();
            for lane in 0..16 {
                let (client, images) = (client.clone(), images.clone());
                let base = format!("{}/{}/library/bench", s3.endpoint, s3.bucket);
                puts.spawn(async move {
                    for i in (lane..count).step_by(16) {
                        // moto needs no signature.
                        let url = format!("{base}/{i:05}.jpg");
                        let response = client.put(url).body(images[i % images.len()].clone()).send().await;
                        assert!(response.is_ok_and(|r| r.status().is_success()), "moto stores the object");
                    }
                });
            }
            puts.join_all().await;
            let env = vec![
                ("THUMBQ_STORE_URL", format!("s3://{}/store", s3.bucket)),
                ("THUMBQ_IMPORT_URL", format!("s3://{}/library", s3.bucket)),
                ("THUMBQ_S3_ENDPOINT", s3.endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", "thumbq-bench".into()),
                ("AWS_SECRET_ACCESS_KEY", "thumbq-bench".into()),
                ("AWS_REGION", "us-east-1".into()),
            ];
            Filled { env, _folder: folder, _s3: Some(s3) }
        }
    }
}

/// Waits for job `id` to end: the job as it ended.
async fn run_job(stack: &Stack, id: &str, deadline: Duration) -> Value {
    let client = reqwest::Client::new();
    let url = format!("{}/jobs/{id}", stack.base);
    let job = async || -> Value { client.get(&url).send().await.expect("the API").json().await.expect("a job") };
    Wait::new("the job ends")
        .every(Duration::from_millis(100))
        .within(deadline)
        .until(async || job().await["status"] == "DONE")
        .await;
    job().await
}

/// Starts a job over `prefix`: its id.
async fn start_job(stack: &Stack, prefix: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/jobs?{QUERY}", stack.base))
        .json(&json!({ "prefix": prefix }))
        .send()
        .await
        .expect("the API");
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.expect("a job");
    job["id"].as_str().expect("an id").to_owned()
}

/// One store's row: the uploads one by one, then the job over the same images.
pub async fn job_row(release: &Path, images: &[Vec<u8>], items: usize, library: Library) -> JobRow {
    let filled = fill(library, images, items).await;
    let mut env = filled.env.clone();
    env.push(("THUMBQ_JOB_ITEM_TTL_SECS", ITEM_TTL_SECS.to_string()));
    let stack = Stack::start(release, 2, &env).await;
    let load = Load { clients: 8, workers: 2, renditions: 1, uploads: items, split: false };
    let uploads = drive(&stack, images, load).await;

    // The stack's own keys (the server's `used_memory` also moves as the previous row's keys expire).
    let redis = stack.settings.redis.clone();
    let memory = async || bytes_under(&redis).await.expect("Redis") as f64;
    let (memory_before, api_before) = (memory().await, cpu_ms(stack.api.id()));
    let started = Instant::now();
    let id = start_job(&stack, "bench").await;
    let job = run_job(&stack, &id, Duration::from_secs(1800)).await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(job["done"], items, "every item made: {job}");
    let api_ms_per_item = (cpu_ms(stack.api.id()) - api_before) / items as f64;
    let redis_bytes_kept = (memory().await - memory_before) / items as f64;
    // Once the items' records have expired: asking for them makes Redis drop those past their time at once.
    let job_id: JobId = id.parse().expect("a job id");
    let records: Vec<String> = (0..items)
        .map(|i| {
            redis.key_prefix.clone() + "task:" + &item_id(job_id, &Import::Key(format!("bench/{i:05}.jpg"))).to_string()
        })
        .collect();
    let mut conn = crate::services::redis_connection(&redis.url).await.expect("Redis");
    Wait::new("the items' records expire")
        .every(Duration::from_secs(1))
        .within(Duration::from_secs(ITEM_TTL_SECS + 60))
        .until(async || {
            let mut left = 0;
            for chunk in records.chunks(1000) {
                left += redis::cmd("EXISTS").arg(chunk).query_async::<u64>(&mut conn).await.expect("EXISTS");
            }
            left == 0
        })
        .await;
    let redis_bytes_expired = (memory().await - memory_before) / items as f64;
    stack.stop().await;
    JobRow {
        uploads_per_second: uploads.per_second,
        items_per_second: items as f64 / wall,
        api_ms_per_upload: uploads.cpu[0],
        api_ms_per_item,
        redis_bytes_kept,
        redis_bytes_expired,
    }
}

/// Interactive latency, idle and beside a job.
pub struct Latency {
    pub samples: usize,
    pub job_items: usize,
    /// Median and maximum, ms.
    pub idle: (f64, f64),
    pub busy: (f64, f64),
    pub job_done_at_end: u64,
}

/// Uploads measured in each phase.
const SAMPLES: usize = 40;

/// Photos in the job beside the interactive uploads.
const JOB_PHOTOS: usize = 1500;

/// One client's uploads, one photo at a time, each until its thumbnail is downloaded: median and max, ms.
async fn one_at_a_time(stack: &Stack, photos: &[Vec<u8>], count: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let sent = Instant::now();
        let url =
            upload(&client, &format!("{}/thumbnails?{QUERY}", stack.base), photos[i % photos.len()].clone()).await;
        download(&client, url).await;
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    (latencies[latencies.len() / 2], latencies[latencies.len() - 1])
}

/// Interactive uploads idle, then while a job of [`JOB_PHOTOS`] photos runs on the same 2 workers.
pub async fn interactive(release: &Path, photos: &[Vec<u8>]) -> Latency {
    let filled = fill(Library::Folder, photos, JOB_PHOTOS).await;
    let stack = Stack::start(release, 2, &filled.env).await;
    one_at_a_time(&stack, photos, 5).await; // warm-up
    let idle = one_at_a_time(&stack, photos, SAMPLES).await;
    let id = start_job(&stack, "bench").await;
    let url = format!("{}/jobs/{id}", stack.base);
    let client = reqwest::Client::new();
    let job = async || -> Value { client.get(&url).send().await.expect("the API").json().await.expect("a job") };
    Wait::new("the job's items run").until(async || job().await["done"].as_u64() > Some(2)).await;
    let busy = one_at_a_time(&stack, photos, SAMPLES).await;
    let job_done_at_end = job().await["done"].as_u64().unwrap_or(0);
    stack.stop().await;
    Latency { samples: SAMPLES, job_items: JOB_PHOTOS, idle, busy, job_done_at_end }
}
