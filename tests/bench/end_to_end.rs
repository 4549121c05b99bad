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

mod kit;
use kit::{corpus, load, measure, services, stack, wait};
/// What the support code reads of itself, under the names it uses.
mod support {
    pub(crate) use crate::kit::{broker_node, daemon, wait};
}

use std::{path::Path, sync::Mutex};

use corpus::{RENDITIONS, list, locate, photos, pipeline_cost, rendition_cost};
use load::{Load, run};

/// Uploads per configuration.
const UPLOADS: usize = 400;

fn main() {
    let Some((release, corpus)) = locate("end to end") else { return };
    let images = photos(&corpus.join("jpeg"));
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
        cpu_rows.lock().expect("rows").push((
            label,
            Counts {
                cpu: row.cpu,
                redis_commands: row.redis_commands,
                redis_bytes: row.redis_bytes,
                s3_requests: row.s3_requests,
            },
        ));
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
    println!(
        "\nPer task: Redis commands (INFO total_commands_processed on the primaries), Redis bytes kept (MEMORY USAGE of \
         the row's keys on the primaries), S3 requests (THUMBQ_BENCH_S3_LOG lines):"
    );
    println!("{:>15} {:>12} {:>12} {:>12}", "clients x workers", "Redis cmds", "Redis bytes", "S3 requests");
    for (label, row) in cpu_rows.lock().expect("rows").iter() {
        let s3 = row.s3_requests.map_or("-".to_owned(), |r| format!("{r:.2}"));
        println!("{label:>15} {:>12.1} {:>12.0} {s3:>12}", row.redis_commands, row.redis_bytes);
    }
    println!("\nCPU ms per task, by process (user + system, from /proc/<pid>/stat):");
    println!(
        "{:>15} {:>8} {:>8} {:>9} {:>8} {:>9} {:>8}",
        "clients x workers", "API", "workers", "RabbitMQ", "Redis", "replicas", "clients"
    );
    for (label, Counts { cpu, .. }) in cpu_rows.lock().expect("rows").iter() {
        println!(
            "{label:>15} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>9.2} {:>8.2}",
            cpu[0], cpu[1], cpu[2], cpu[3], cpu[5], cpu[4]
        );
    }
    println!("(RabbitMQ: every node; Redis: the primaries, whose one thread each is the limit; replicas apart.)");
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

/// Every corpus file (JPEG baseline and progressive up to 18 MP, PNG, 16-MP WebP) and three photos made into each
/// other input (HEIC, AVIF, JPEG XL, an H.264 clip) beside a drawn SVG, a PDF page and the example animation, twice,
/// from 8 clients to 2 fresh workers: the mixed load's throughput, latency and peak memory per process.
fn every_format(runtime: &tokio::runtime::Runtime, release: &Path, corpus: &Path) {
    let mut files: Vec<Vec<u8>> = ["jpeg", "png", "webp"]
        .iter()
        .flat_map(|dir| list(&corpus.join(dir)))
        .filter_map(|f| std::fs::read(f).ok())
        .collect();
    files.extend(other_inputs(&corpus.join("jpeg")));
    let megabytes = files.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let load = Load { clients: 8, workers: 2, renditions: 1, uploads: 2 * files.len(), split: false };
    let row = runtime.block_on(run(release, &files, load));
    println!(
        "\nEvery format: {} files ({megabytes:.1} MB: JPEG, PNG, WebP, HEIC, AVIF, JPEG XL, MP4, SVG, PDF, GIF), each \
         uploaded twice by 8 clients, 2 workers:",
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

/// The inputs with decoders of their own, made from the first three photos in `jpeg` (as `make bench`'s pipeline
/// table makes them), a drawn SVG, a one-page PDF and the example animation (its first frame).
fn other_inputs(jpeg: &Path) -> Vec<Vec<u8>> {
    use thumbq_common::fixtures::{cjxl, encode, ffmpeg_video, heif_enc, pdf};
    let mut inputs = Vec::new();
    for path in list(jpeg).into_iter().take(3) {
        let Ok(photo) = std::fs::read(&path) else { continue };
        let png = encode(&image::load_from_memory(&photo).expect("a photo"), image::ImageFormat::Png);
        inputs.push(heif_enc(&png, &["-q", "80", "-t", "320"]));
        inputs.push(heif_enc(&png, &["-A", "-q", "80"]));
        inputs.push(cjxl(&photo, &["-j", "0", "-d", "1"]));
        let fit = "scale=1920:1080:force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2";
        let still = path.display().to_string();
        let clip =
            ["-loop", "1", "-i", &still, "-t", "2", "-r", "25", "-vf", fit, "-c:v", "libx264", "-pix_fmt", "yuv420p"];
        inputs.push(ffmpeg_video("mp4", &clip));
    }
    inputs.push(
        b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 400 300'><circle cx='200' cy='150' r='90'/></svg>"
            .to_vec(),
    );
    inputs.push(pdf(595, 842, "0 0 1 rg 50 50 495 742 re f", ""));
    let animation = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/example-animation.gif");
    inputs.extend(std::fs::read(animation).ok());
    inputs
}

/// What each row counted, per task.
struct Counts {
    cpu: [f64; 6],
    redis_commands: f64,
    redis_bytes: f64,
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
