//! Uploads are streamed to the store, never held whole: the original's file is being written while its body still
//! arrives (and no task points at it yet), a client that hangs up half-way leaves nothing behind, and a format whose
//! header sits at its end (a TIFF written by libtiff's rules) is still accepted.

use image::{GenericImageView, ImageFormat};
use thumbq_common::fixtures::sample_image;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::support::{TestApp, eventually, spawn_api, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_is_written_while_it_arrives_and_a_client_that_hangs_up_leaves_nothing() {
    let app = spawn_api().await;
    // A real JPEG header, then padding: 3 MB announced, 1.2 MB sent (the folder store writes in blocks of 1 MiB).
    let mut body = sample_image(ImageFormat::Jpeg, 64, 64);
    body.resize(3_000_000, 0);
    let mut client = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /thumbnails HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&body[..1_200_000]).await.unwrap();
    // Written under its final name, but no task points at it until it is whole.
    eventually("the original is being written", async || written(&app) > 0).await;
    assert!(written(&app) <= 1_200_000, "no more than arrived");
    assert!(app.redis_keys().await.iter().all(|k| !k.contains(":task:")), "no task is recorded while it arrives");

    drop(client);
    eventually("the partial original is deleted", async || TestApp::files_in(&app.originals_dir()).is_empty()).await;
    assert!(app.redis_keys().await.iter().all(|k| !k.contains(":task:")), "no task was recorded");
    assert_eq!(app.queue_depth(&app.settings.amqp.queue).await, 0, "no task was queued");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiff_whose_header_is_past_the_first_megabyte_is_read_whole_and_made_a_thumbnail() {
    let app = spawn_app().await;
    let tiff = sample_image(ImageFormat::Tiff, 800, 600);
    // The image directory's offset, in a little-endian TIFF's bytes 4..8: past the window the API probes first.
    let directory = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
    assert!(directory > thumbq_api::upload::PROBE_WINDOW, "the directory is at {directory}");

    let accepted = app.upload_ok(tiff, "").await;
    assert_eq!(app.download_image(&accepted.name).await.dimensions(), (100, 100));
    let record = app.task(accepted.id).await;
    let source = record.source.expect("source info");
    assert_eq!((source.width, source.height, source.format.as_str()), (800, 600, "tiff"));
    app.stop().await;
}

/// Bytes in the originals folder.
fn written(app: &TestApp) -> u64 {
    TestApp::files_in(&app.originals_dir()).iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum()
}
