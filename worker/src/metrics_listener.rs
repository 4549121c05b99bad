//! The worker's small HTTP listener: `GET /metrics` (Prometheus) and `GET /health`, until shutdown.

use std::net::SocketAddr;

use axum::{Router, http::header, routing::get};
use tokio_util::sync::CancellationToken;

/// The listener's routes (deployment manifests point their probes at these; a test checks it).
pub const ROUTES: [&str; 2] = ["/metrics", "/health"];

/// Binds `address` and serves metrics in the background until `shutdown`.
pub async fn start(address: SocketAddr, shutdown: CancellationToken) -> std::io::Result<()> {
    let handle = thumbq_common::metrics::install();
    let app = Router::new()
        .route(
            ROUTES[0],
            get(move || {
                let handle = handle.clone();
                async move {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], thumbq_common::metrics::render(&handle))
                }
            }),
        )
        .route(ROUTES[1], get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "worker metrics listening");
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "worker metrics listener failed");
        }
    });
    Ok(())
}
