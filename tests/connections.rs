//! Connection-level bounds of the API: slow and idle connections are closed, the number of open connections is
//! capped, and an oversized upload is refused from its head alone.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{TestApp, spawn_api_configured};

/// A raw TCP connection to the app, as a hostile or careless client opens it.
async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection, failing after `within`; returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Instant) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server kept the connection open for {within:?}");
    (String::from_utf8_lossy(&received).into_owned(), Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_or_trickles_its_head_is_closed_after_the_header_timeout() {
    let app = spawn_api_configured(|s| s.http.header_read_timeout = Duration::from_secs(1)).await;
    let opened = Instant::now();
    let mut silent = connect(&app).await;
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(closed - opened >= Duration::from_millis(900), "closed after {:?}", closed - opened);

    // One byte every 200 ms: the head never completes within the timeout.
    let mut trickle = connect(&app).await;
    let opened = Instant::now();
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if trickle.write_all(&[*byte]).await.is_err() {
            break; // closed by the server
        }
        let mut probe = [0u8; 1];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(200), trickle.read(&mut probe)).await {
            assert!(matches!(read, Ok(0) | Err(_)), "the server answered a head it never got");
            break;
        }
        assert!(opened.elapsed() < Duration::from_secs(3), "a trickling client kept its connection for 3 s");
    }
    assert!(opened.elapsed() < Duration::from_secs(3));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_api_configured(|s| s.http.idle_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answered = Instant::now();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(closed - answered >= Duration::from_millis(900), "closed after {:?}", closed - answered);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = spawn_api_configured(|s| s.http.max_connections = 2).await;
    let first = connect(&app).await;
    let _second = connect(&app).await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    let health = format!("{}/health", app.base);
    assert!(client.get(&health).send().await.is_err(), "a third connection was served past the cap of 2");
    drop(first);
    crate::support::eventually("a slot frees once a connection closes", async || {
        client.get(&health).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_announcing_more_than_the_limit_gets_413_at_once() {
    let app = spawn_api_configured(|s| s.limits.max_upload_bytes = 1 << 20).await;
    let mut stream = connect(&app).await;
    let head =
        "POST /thumbnails HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 999999999\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer)).await;
    let length = read.expect("answered within 2 s, without the body").unwrap();
    let answer = String::from_utf8_lossy(&answer[..length]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/json") && answer.contains("\"error\""), "{answer}");
    app.stop().await;
}
