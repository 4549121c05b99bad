//! The `thumbq` command line, run in-process over the typed client (`thumbq_client::cli`): a folder uploaded with
//! its thumbnails saved under the names they came from, a failure counted and reported, a re-run that makes no
//! second task, and a job started and watched to its end.

use clap::Parser;
use image::{GenericImageView, ImageFormat};
use thumbq_client::cli::{Cli, run};
use thumbq_common::{fixtures::sample_image, settings::StoreLocation};

use crate::support::spawn_api_configured;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_uploads_a_folder_saves_each_thumbnail_and_runs_a_job() {
    let library = tempfile::tempdir().unwrap();
    let app =
        spawn_api_configured(|s| s.import.location = Some(StoreLocation::Local(library.path().to_path_buf()))).await;
    app.start_worker().await;
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("sub")).unwrap();
    std::fs::write(folder.path().join("a.png"), sample_image(ImageFormat::Png, 64, 48)).unwrap();
    std::fs::write(folder.path().join("sub/b.jpg"), sample_image(ImageFormat::Jpeg, 80, 60)).unwrap();
    std::fs::write(folder.path().join("notes.txt"), b"not an image").unwrap();
    let out = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| Cli::parse_from(["thumbq", "--url", &app.base].iter().chain(args).copied());
    let upload = [
        "upload",
        folder.path().to_str().unwrap(),
        "--format",
        "png",
        "--query",
        "width=20&height=15&fit=fill",
        "--out",
        out.path().to_str().unwrap(),
    ];

    assert!(!run(cli(&upload)).await.unwrap(), "one file failed: the run says so");
    for name in ["a.png", "sub/b.png"] {
        let saved = image::open(out.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(saved.dimensions(), (20, 15), "{name}");
    }
    assert!(!out.path().join("notes.png").exists());
    let tasks = async || {
        app.get("/tasks?limit=100").await.json::<serde_json::Value>().await.unwrap()["tasks"].as_array().unwrap().len()
    };
    assert_eq!(tasks().await, 2);
    // A re-run (after a crash, say) makes no second task: each file's Idempotency-Key comes from its bytes.
    assert!(!run(cli(&upload)).await.unwrap());
    assert_eq!(tasks().await, 2, "no second task for the same files");

    for i in 0..3 {
        std::fs::create_dir_all(library.path().join("photos")).unwrap();
        std::fs::write(library.path().join(format!("photos/{i}.png")), sample_image(ImageFormat::Png, 30, 30)).unwrap();
    }
    assert!(run(cli(&["job", "create", "--prefix", "photos", "--sizes", "16x16"])).await.unwrap());
    let jobs: Vec<thumbq_common::job::Job> = app.get("/jobs").await.json().await.unwrap();
    let id = jobs[0].id.to_string();
    assert!(run(cli(&["job", "watch", &id])).await.unwrap(), "watched to DONE with nothing failed");
    let job: thumbq_common::job::Job = app.get(&format!("/jobs/{id}")).await.json().await.unwrap();
    assert_eq!((job.done, job.failed), (3, 0));
    assert!(run(cli(&["job", "list"])).await.unwrap());
    app.stop().await;
}
