//! The API's connection loop: HTTP/1.1 through hyper, with the bounds `axum::serve` does not offer. A connection
//! must send its request head within `THUMBQ_HEADER_READ_TIMEOUT_SECS` (a slow-header client), is closed when
//! nothing arrives for `THUMBQ_IDLE_TIMEOUT_SECS` (idle keep-alive, a stalled body), at most
//! `THUMBQ_MAX_CONNECTIONS` are open at once, and at most `THUMBQ_MAX_CONNECTIONS_PER_CLIENT` from one address
//! (the trusted proxies' excepted, since each carries many clients), so that one client cannot hold every slot. On
//! shutdown the listener closes, idle connections close, and open requests finish.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use thumbq_common::settings::HttpSettings;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The largest request head hyper buffers; the request-limit middleware answers long URIs and headers with JSON well
/// before this, hyper itself (with an empty `431`) only beyond it.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown`, then waits for open requests to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpSettings,
    trusted_proxies: &[ipnet::IpNet],
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(http.max_connections));
    let per_client = PerClient::new(http.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(http.header_read_timeout).max_buf_size(MAX_HEAD_BYTES);
    loop {
        // Take a connection slot before accepting: past the cap, new connections wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = connections.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let client_slot = if crate::client::is_trusted(peer.ip(), trusted_proxies) {
            None
        } else {
            match per_client.admit(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    tokio::spawn(refuse(stream, slot));
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(http.idle_timeout));
        // The client's address, as axum's `ConnectInfo`: anonymous rate limits count per address.
        let app = tower::ServiceBuilder::new()
            .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .service(app.clone());
        let connection = builder.serve_connection(TokioIo::new(Box::pin(stream)), TowerToHyperService::new(app));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "connection closed with an error");
            }
            drop((slot, client_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The `429` a connection over its address's cap gets before it is closed. Written by hand: no request is read, so
/// no HTTP machinery is spent on it.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
    retry-after: 1\r\nconnection: close\r\ncontent-length: 142\r\n\r\n\
    {\"error\":\"too many open connections from your address (THUMBQ_MAX_CONNECTIONS_PER_CLIENT); reuse or close some\",\
    \"code\":\"too_many_connections\"}";

/// Answers a connection over its address's cap and closes it. What the client sent is read (a little, briefly)
/// first, so that closing does not reset the connection before the client reads the answer.
async fn refuse(mut stream: TcpStream, slot: tokio::sync::OwnedSemaphorePermit) {
    let answer = async {
        stream.write_all(TOO_MANY_CONNECTIONS).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
    drop(slot);
}

/// Open connections per client address, capped.
struct PerClient {
    open: Mutex<HashMap<IpAddr, usize>>,
    cap: usize,
}

/// One admitted connection of an address; dropping it frees its place.
struct ClientSlot {
    owner: Arc<PerClient>,
    address: IpAddr,
}

impl PerClient {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { open: Mutex::new(HashMap::new()), cap })
    }

    /// A place for one more connection from `address`, or `None` when it has `cap` open.
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<ClientSlot> {
        let address = address.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(address).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(ClientSlot { owner: self.clone(), address })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            // Addresses without connections are forgotten: the map holds only what is open.
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_at_most_its_cap_and_its_places_come_back() {
        let per_client = PerClient::new(2);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::ffff:127.0.0.2".parse().unwrap());
        let first = per_client.admit(a).unwrap();
        let _second = per_client.admit(a).unwrap();
        assert!(per_client.admit(a).is_none(), "a third from one address");
        assert!(per_client.admit(b).is_some(), "another address is not held up");
        drop(first);
        assert!(per_client.admit(a).is_some(), "a closed connection frees its place");
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "));
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(body["error"].is_string() && body["code"] == "too_many_connections", "{body}");
    }
}
