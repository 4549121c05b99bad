//! A hostile client's ways to wear the API down, each bounded (issue 23: items 3, 4, 6, 7, 13, 14, 15): keyless
//! uploads refused before they hold memory, one address's connections capped, made-up keys charged to the address,
//! foreign `Host` names refused with keys off, and rate-limit buckets that forwarded headers cannot pick.

use std::{net::SocketAddr, time::Duration};

use reqwest::StatusCode;
use thumbq_common::{
    Settings,
    api_key::{Rate, RateLimit, Scopes, generate_key},
    settings::{AllowedHosts, AuthMode},
    state_store::api_keys::KeySpec,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::support::{TestApp, spawn_api_configured};

/// A raw connection to the app from the loopback address `from` (127.0.0.0/8 has room for many clients).
async fn connect_from(app: &TestApp, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(app.base.trim_start_matches("http://").parse().unwrap()).await.unwrap()
}

/// Sends `head` and reads the first answer (up to its head), failing after `within`.
async fn exchange(stream: &mut TcpStream, head: &str, within: Duration) -> String {
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 8192];
    let read = tokio::time::timeout(within, stream.read(&mut answer)).await;
    let length = read.unwrap_or_else(|_| panic!("no answer within {within:?} to {head:?}")).unwrap_or(0);
    String::from_utf8_lossy(&answer[..length]).into_owned()
}

fn rate(per_second: u32, burst: u32) -> RateLimit {
    RateLimit { rate: format!("{per_second}/s").parse::<Rate>().unwrap(), burst }
}

async fn key(app: &TestApp, name: &str, scopes: &str) -> String {
    let key = generate_key();
    app.states.create_key(&KeySpec::new(name, scopes.parse::<Scopes>().unwrap()), &key, false).await.unwrap();
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_uploads_get_401_at_once_and_hold_no_upload_memory() {
    // Room for two uploads' first reservations (2 MiB each): before the fix the third keyless upload waited 10 s
    // for memory, and tenant A's upload got 503.
    let app = spawn_api_configured(|s| {
        s.access.auth = AuthMode::Keys;
        s.limits.upload_memory_mb = 4;
    })
    .await;
    let tenant = key(&app, "tenant-a", "upload").await;
    let head = "POST /thumbnails HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n\
                Content-Length: 20000000\r\n\r\n--x\r\n";
    let mut attackers = Vec::new();
    for _ in 0..6 {
        let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
        let answer = exchange(&mut stream, head, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        attackers.push(stream); // kept open, trickling nothing more
    }
    let part = reqwest::multipart::Part::bytes(thumbq_common::fixtures::sample_image(image::ImageFormat::Jpeg, 64, 48))
        .file_name("a.jpg");
    let response = app
        .client
        .post(format!("{}/thumbnails", app.base))
        .bearer_auth(&tenant)
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED, "the tenant's upload is not held up");
    drop(attackers);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_connections() {
    let app = spawn_api_configured(|s| {
        s.http.max_connections = 16;
        s.http.max_connections_per_client = 4;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
        let answer =
            exchange(&mut stream, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }
    // The fifth from that address: a JSON 429, and closed.
    let mut fifth = connect_from(&app, [127, 0, 0, 1]).await;
    let answer = exchange(&mut fifth, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("application/json") && answer.contains("THUMBQ_MAX_CONNECTIONS_PER_CLIENT"), "{answer}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), fifth.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the refused connection is closed");

    // Another address is served at once, for probes and for work alike.
    for path in ["/health", "/tasks"] {
        let mut other = connect_from(&app, [127, 0, 0, 2]).await;
        let answer =
            exchange(&mut other, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), Duration::from_secs(2))
                .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    // A place freed is a place to use again.
    drop(held.pop());
    crate::support::eventually("a closed connection frees its place", async || {
        let mut again = connect_from(&app, [127, 0, 0, 1]).await;
        exchange(&mut again, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 200")
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_keys_are_charged_to_the_address_and_the_scheme_is_case_insensitive() {
    let app = spawn_api_configured(|s| {
        s.access.auth = AuthMode::Keys;
        s.access.anonymous_rate = rate(1, 5);
    })
    .await;
    let reader = key(&app, "reader", "read").await;
    let tasks = format!("{}/tasks", app.base);
    let mut statuses = Vec::new();
    for header in ["Bearer tq_bogus0000000000000000000000000000000000", "Basic eA==", "Bearer"] {
        for _ in 0..4 {
            let response = app.client.get(&tasks).header("authorization", header).send().await.unwrap();
            statuses.push(response.status().as_u16());
        }
    }
    assert!(statuses.iter().all(|s| [401, 429].contains(s)), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 6,
        "past the burst of 5, made-up keys get 429: {statuses:?}"
    );

    // The scheme's name in any case (RFC 9110); a real key is charged to its own bucket, not the spent address's.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response =
            app.client.get(&tasks).header("authorization", format!("{scheme} {reader}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_off_only_loopback_and_configured_hosts_are_answered() {
    let app = spawn_api_configured(|s| {
        s.access.auth = AuthMode::Off;
        s.access.allowed_hosts = AllowedHosts::Listed(vec!["thumbs.internal".into()]);
    })
    .await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let get = async |path: &str, host: &str| {
        let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
        let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nConnection: close\r\n\r\n");
        exchange(&mut stream, &head, Duration::from_secs(3)).await
    };
    // DNS rebinding: the attacker's name, re-pointed at 127.0.0.1.
    for host in [format!("attacker.example:{port}"), "attacker.example".into(), format!("127.0.0.1.nip.io:{port}")] {
        let answer = get("/tasks", &host).await;
        assert!(answer.starts_with("HTTP/1.1 421"), "{host}: {answer}");
        assert!(answer.contains("\"code\":\"host_not_allowed\""), "{answer}");
    }
    let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
    let delete = format!("DELETE /dead-letters HTTP/1.1\r\nHost: attacker.example:{port}\r\nConnection: close\r\n\r\n");
    assert!(exchange(&mut stream, &delete, Duration::from_secs(3)).await.starts_with("HTTP/1.1 421"));
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "[::1]".into(), "thumbs.internal:80".into()]
    {
        assert!(get("/tasks", &host).await.starts_with("HTTP/1.1 200"), "{host}");
    }
    assert!(get("/health", "attacker.example").await.starts_with("HTTP/1.1 200"), "probes answer any host");
    app.stop().await;

    // With keys on, the key is what protects: any host is answered.
    let app = spawn_api_configured(|s| s.access.auth = AuthMode::Keys).await;
    let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
    let answer =
        exchange(&mut stream, "GET /tasks HTTP/1.1\r\nHost: thumbs.example.com\r\n\r\n", Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_pick_a_bucket_only_through_a_trusted_proxy() {
    let limited = |s: &mut Settings| s.access.anonymous_rate = rate(1, 3);
    let statuses = async |app: &TestApp, from: [u8; 4], forwarded_for: &str| {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let mut stream = connect_from(app, from).await;
            let head = format!(
                "GET /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {forwarded_for}\r\nConnection: close\r\n\r\n"
            );
            let answer = exchange(&mut stream, &head, Duration::from_secs(3)).await;
            statuses.push(answer[9..12].to_owned());
        }
        statuses
    };

    // Untrusted peer: spoofed headers change nothing, every request shares the peer's bucket of 3.
    let app = spawn_api_configured(limited).await;
    let first = statuses(&app, [127, 0, 0, 3], "198.51.100.1").await;
    let second = statuses(&app, [127, 0, 0, 3], "198.51.100.2").await;
    assert_eq!(first, ["200", "200", "200"]);
    assert!(second.iter().all(|s| s == "429"), "a new X-Forwarded-For bought a new bucket: {second:?}");
    app.stop().await;

    // Behind a trusted proxy (127.0.0.4): two clients, one bucket each; the proxy's own bucket is untouched.
    let app = spawn_api_configured(|s| {
        limited(s);
        s.access.trusted_proxies = vec!["127.0.0.4/32".parse().unwrap()];
    })
    .await;
    assert_eq!(statuses(&app, [127, 0, 0, 4], "203.0.113.9, 198.51.100.1").await, ["200", "200", "200"]);
    assert_eq!(statuses(&app, [127, 0, 0, 4], "198.51.100.2").await, ["200", "200", "200"]);
    let again = statuses(&app, [127, 0, 0, 4], "203.0.113.50, 198.51.100.1").await;
    assert!(again.iter().all(|s| s == "429"), "the first client's bucket is spent whatever it writes left: {again:?}");
    app.stop().await;
}
