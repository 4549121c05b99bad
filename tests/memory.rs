//! Memory bounds, measured on real processes: what a hostile upload costs the API, and what the worker's memory
//! budget holds a worker to.

use image::ImageFormat;
use thumbq_common::fixtures::{png_with_icc_bomb, sample_image};

use crate::support::{
    eventually,
    process::{ApiProcess, WorkerProcess},
    spawn_api, spawn_api_configured,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_metadata_inflates_to_400_mb_costs_the_api_under_32_mb() {
    let app = spawn_api().await;
    let api = ApiProcess::spawn(&app.settings).await;
    let client = reqwest::Client::new();
    let upload = async |bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new().part("image", reqwest::multipart::Part::bytes(bytes));
        client.post(format!("{}/thumbnails", api.base)).multipart(form).send().await.unwrap()
    };
    // Warm up: the first upload connects to RabbitMQ and Redis and grows the allocator's arenas.
    assert_eq!(upload(sample_image(ImageFormat::Png, 64, 64)).await.status(), 202);
    let before = api.peak_rss_mib();

    let bomb = png_with_icc_bomb(400 << 20);
    assert!(bomb.len() < 1 << 20);
    let answer = upload(bomb).await;
    assert_eq!(answer.status(), 202, "a 1x1 PNG with a bloated profile is still an image: {:?}", answer.text().await);
    let grown = api.peak_rss_mib() - before;
    assert!(grown < 32, "the API's peak memory grew by {grown} MiB for one bomb");
    app.stop().await;
}

/// A `width`×`height` progressive JPEG at 4:4:4, the layout that makes libjpeg-turbo hold 6 bytes a pixel.
fn progressive_444_jpeg(width: usize, height: usize) -> Vec<u8> {
    let mut pixels = vec![0u8; width * height * 3];
    for (row, line) in pixels.chunks_mut(width * 3).enumerate() {
        for (i, value) in line.iter_mut().enumerate() {
            *value = ((i / 3 / 34 + row / 23 + (i % 3) * 40) % 256) as u8;
        }
    }
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width,
        pitch: width * 3,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_progressive(true).unwrap();
    compressor.set_subsamp(turbojpeg::Subsamp::None).unwrap();
    compressor.compress_to_vec(image).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_50_megapixel_progressive_jpegs_at_concurrency_2_keep_the_worker_within_its_budget() {
    const BUDGET_MIB: u64 = 400;
    let app = spawn_api_configured(|s| {
        s.worker.concurrency = 2;
        s.worker.memory_budget_mb = BUDGET_MIB as u32;
        s.limits.max_upload_bytes = 64 << 20;
    })
    .await;
    let jpeg = progressive_444_jpeg(8660, 5773); // 49.99 megapixels, under the default limit
    let worker = WorkerProcess::spawn(&app.settings, "budget");
    eventually("the worker process consumes", async || app.consumers().await == 1).await;
    let idle = worker.peak_rss_mib();
    let tasks = [app.upload_ok(jpeg.clone(), "").await, app.upload_ok(jpeg, "").await];
    for task in &tasks {
        let image = app.download_image(&task.name).await;
        assert_eq!((image.width(), image.height()), (100, 100));
    }
    let peak = worker.peak_rss_mib();
    eprintln!("worker peak {peak} MiB (idle {idle} MiB, budget {BUDGET_MIB} MiB)");
    assert!(
        peak < idle + BUDGET_MIB,
        "the worker peaked at {peak} MiB, over {idle} MiB idle + a {BUDGET_MIB} MiB budget"
    );
    app.stop().await;
}

/// A `width`×`height` photo-like PNG (the sample pattern), encoded by heif-enc as HEIC with `args`.
fn heic(width: u32, height: u32, args: &[&str]) -> Vec<u8> {
    thumbq_common::fixtures::heif_enc(&sample_image(ImageFormat::Png, width, height), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_12_megapixel_heic_makes_a_thumbnail_with_the_worker_under_128_mb() {
    let app = spawn_api().await;
    // As phones write them: with a thumbnail item of 320 pixels (a 100x100 thumbnail is made from it); and without
    // (measured: 38 and 104 MiB, 33 of them the idle worker's).
    let phone = heic(4000, 3000, &["-q", "50", "-t", "320"]);
    let bare = heic(4000, 3000, &["-q", "50", "-p", "preset=ultrafast"]);
    for (what, bytes) in [("with a thumbnail item", phone), ("without", bare)] {
        let worker = WorkerProcess::spawn(&app.settings, "heic");
        eventually("the worker process consumes", async || app.consumers().await == 1).await;
        let image = app.download_image(&app.upload_ok(bytes, "").await.name).await;
        assert_eq!((image.width(), image.height()), (100, 100));
        let peak = worker.peak_rss_mib();
        eprintln!("12-MP HEIC {what}: worker peak {peak} MiB");
        assert!(peak < 128, "12-MP HEIC {what}: the worker peaked at {peak} MiB, over 128 MiB");
        drop(worker);
        eventually("the worker process is gone", async || app.consumers().await == 0).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_48_megapixel_heics_and_a_4k_video_wait_for_room_within_the_worker_s_budget() {
    const BUDGET_MIB: u64 = 1000;
    let app = spawn_api_configured(|s| {
        s.worker.concurrency = 3;
        s.worker.memory_budget_mb = BUDGET_MIB as u32;
    })
    .await;
    let heic = heic(8000, 6000, &["-q", "20", "-p", "preset=ultrafast"]);
    let video = thumbq_common::fixtures::ffmpeg_video(
        "mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=3840x2160:d=2:r=25",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let worker = WorkerProcess::spawn(&app.settings, "budget");
    eventually("the worker process consumes", async || app.consumers().await == 1).await;
    let idle = worker.peak_rss_mib();
    let tasks = [app.upload_ok(heic.clone(), "").await, app.upload_ok(heic, "").await, app.upload_ok(video, "").await];
    for task in &tasks {
        let image = app.download_image(&task.name).await;
        assert_eq!((image.width(), image.height()), (100, 100));
    }
    let peak = worker.peak_rss_mib();
    eprintln!("worker peak {peak} MiB (idle {idle} MiB, budget {BUDGET_MIB} MiB)");
    assert!(peak < idle + BUDGET_MIB, "the worker peaked at {peak} MiB, over {idle} MiB idle + {BUDGET_MIB} MiB");
    app.stop().await;
}
