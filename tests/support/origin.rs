//! An image server on loopback for imports by URL: each path answers as it is told (bytes, a status, a redirect, a
//! body without a length, failures before success), and every request is logged.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio_util::sync::CancellationToken;

/// How one path answers.
#[derive(Clone)]
pub enum Answer {
    /// `200` with these bytes and their `Content-Length`.
    Bytes(Vec<u8>),
    /// `200` with these bytes streamed in chunks, without a `Content-Length`.
    Streamed(Vec<u8>),
    /// This status, with a short text body.
    Status(u16),
    /// `302` to this location (a path of this server, or any URL).
    Redirect(String),
    /// This status for the first `n` requests, then the bytes.
    FailsFirst(usize, u16, Vec<u8>),
}

type Routes = Arc<(HashMap<String, Answer>, Mutex<Vec<String>>)>;

/// A running server; stops when dropped.
pub struct Origin {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    routes: Routes,
    stop: CancellationToken,
}

impl Origin {
    /// Starts a server answering each of `routes`' paths as told, and `404` elsewhere.
    pub async fn start(routes: impl IntoIterator<Item = (&'static str, Answer)>) -> Self {
        let routes: HashMap<String, Answer> = routes.into_iter().map(|(p, a)| (p.to_owned(), a)).collect();
        let routes: Routes = Arc::new((routes, Mutex::default()));
        let app = Router::new().fallback(answer).with_state(routes.clone());
        let (base, stop) = super::receiver::serve(app).await;
        Self { base, routes, stop }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The paths requested so far, in order.
    pub fn requested(&self) -> Vec<String> {
        self.routes.1.lock().expect("the log").clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn answer(State(routes): State<Routes>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let seen = {
        let mut log = routes.1.lock().expect("the log");
        log.push(path.clone());
        log.iter().filter(|p| **p == path).count()
    };
    match routes.0.get(&path) {
        None => (StatusCode::NOT_FOUND, "no such image").into_response(),
        Some(Answer::Bytes(bytes)) => bytes.clone().into_response(),
        Some(Answer::Streamed(bytes)) => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(16 << 10).map(|c| Ok(c.to_vec())).collect();
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        Some(Answer::Status(status)) => {
            (StatusCode::from_u16(*status).expect("a status"), "told to fail").into_response()
        }
        Some(Answer::Redirect(location)) => {
            (StatusCode::FOUND, [(header::LOCATION, location.clone())], "moved").into_response()
        }
        Some(Answer::FailsFirst(n, _, bytes)) if seen > *n => bytes.clone().into_response(),
        Some(Answer::FailsFirst(_, status, _)) => {
            (StatusCode::from_u16(*status).expect("a status"), "not yet").into_response()
        }
    }
}
