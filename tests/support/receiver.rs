//! A webhook receiver on loopback: records every request it gets and answers with the statuses it is told to, in
//! order (the last one for every request after).

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use tokio_util::sync::CancellationToken;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Log {
    answers: Vec<u16>,
    received: Vec<Received>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    log: Arc<Mutex<Log>>,
    stop: CancellationToken,
}

impl Receiver {
    /// Starts a receiver answering `answers` in order, then the last one.
    pub async fn start(answers: &[u16]) -> Self {
        let log = Arc::new(Mutex::new(Log { answers: answers.to_vec(), received: Vec::new() }));
        let app = Router::new().route("/hook", post(receive)).with_state(log.clone());
        let (base, stop) = serve(app).await;
        Self { url: format!("{base}/hook"), log, stop }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("the log").received.clone()
    }
}

/// Serves `app` on a free loopback port until the token is cancelled: its base URL, `http://127.0.0.1:<port>`.
pub async fn serve(app: Router) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
    });
    (base, stop)
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(State(log): State<Arc<Mutex<Log>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut log = log.lock().expect("the log");
    let answer = log.answers.get(log.received.len()).or(log.answers.last()).copied().unwrap_or(200);
    log.received.push(Received { headers, body });
    StatusCode::from_u16(answer).expect("a status")
}
