//! The API's connection loop: HTTP/1.1 through hyper, with the bounds `axum::serve` does not offer. A connection
//! must send its request head within `THUMBQ_HEADER_READ_TIMEOUT_SECS` (a slow-header client), is closed when
//! nothing arrives for `THUMBQ_IDLE_TIMEOUT_SECS` (idle keep-alive, a stalled body), and at most
//! `THUMBQ_MAX_CONNECTIONS` are open at once. On shutdown the listener closes, idle connections close, and open
//! requests finish.

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use thumbq_common::settings::HttpSettings;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The largest request head hyper buffers; the request-limit middleware answers long URIs and headers with JSON well
/// before this, hyper itself (with an empty `431`) only beyond it.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown`, then waits for open requests to finish.
pub async fn serve(listener: TcpListener, app: Router, http: &HttpSettings, shutdown: CancellationToken) {
    let connections = Arc::new(Semaphore::new(http.max_connections));
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
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
