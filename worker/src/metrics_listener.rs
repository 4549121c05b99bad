//! The worker's small HTTP listener: `GET /metrics` (Prometheus) and `GET /health`, until shutdown.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::{Router, http::header, routing::get};
use tokio_util::sync::CancellationToken;

/// The listener's routes (deployment manifests point their probes at these; a test checks it).
pub const ROUTES: [&str; 2] = ["/metrics", "/health"];

/// Binds `address` and serves metrics in the background until `shutdown`. A failure to bind names the settings
/// that fix it: two workers on one machine need a port each.
pub async fn start(address: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
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
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| {
        format!(
            "the worker's metrics listener cannot bind {address}: give each worker its own \
             THUMBQ_WORKER_METRICS_PORT (or THUMBQ_WORKER_METRICS_HOST), or THUMBQ_WORKER_METRICS_PORT=0 for none"
        )
    })?;
    tracing::info!(address = %listener.local_addr()?, "worker metrics listening");
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "worker metrics listener failed");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_in_use_is_refused_with_the_setting_that_fixes_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let error = start(taken.local_addr().unwrap(), CancellationToken::new()).await.unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("THUMBQ_WORKER_METRICS_PORT") && message.contains("in use"), "{message}");
    }
}
