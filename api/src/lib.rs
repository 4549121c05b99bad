//! thumbq's HTTP API: accepts uploads, queues resize tasks on RabbitMQ, serves thumbnails and task records.
//! [`run`] is the whole server; [`run_from_env`] adds settings, logging, signals and the file store; the command line
//! ([`cli`], a leaf: nothing here calls it) is what `main.rs` calls, and it chooses between serving and the `keys`
//! commands. Tests call [`serve`] on a listener of their own.

pub mod caller;
pub mod cli;
pub mod client;
pub mod error;
pub mod events;
pub mod extract;
pub mod headers;
pub mod idempotency;
pub mod key_file;
pub mod limits;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod upload;

#[cfg(test)]
mod tests;

use anyhow::Context;
use axum::{Router, extract::DefaultBodyLimit, http::StatusCode};
use thumbq_common::{Settings, file_store::SharedFileStore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};
use tracing::{info, warn};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
    upload::MULTIPART_OVERHEAD,
};

/// The complete application: routes, documentation, limits, tracing and timeouts.
pub fn app(state: AppState) -> Router {
    let limits = &state.settings.limits;
    // The extractors' limit leaves room for multipart framing; the image itself is checked against the exact limit.
    let body_limit = DefaultBodyLimit::max(limits.max_upload_bytes + MULTIPART_OVERHEAD);
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.settings.http.request_timeout);
    let max_upload = limits.max_upload_bytes;
    let cors = headers::cors(&state.settings.access.cors_origins);
    // Outermost last: tracing sees everything; CORS answers preflights before anything else; every answer gets the
    // security headers; every error answer passes `json_errors`; head limits answer before the timeout starts or
    // any body is read.
    let router = Router::new()
        .merge(routes::router())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi::document(&state.settings)))
        .fallback(|| async { ApiError::NotFound(ErrorCode::RouteNotFound, "no such route; see /docs".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), caller::authenticate))
        .layer(axum::middleware::from_fn(routes::metrics::track_http))
        .layer(body_limit)
        .layer(timeout)
        .layer(axum::middleware::from_fn_with_state(max_upload, limits::limit_request))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), headers::secure))
        .layer(tower::util::option_layer(cors))
        .layer(TraceLayer::new_for_http().make_span_with(request_span));
    router.with_state(state)
}

/// A request's span: at INFO, so that traces have it under the default filter (tower-http's is at DEBUG), with the
/// path but not the query (which may hold a signed link's token), and, with traces on, as the child of the trace a
/// client's `traceparent` names. Probes and metric scrapes, every few seconds each, get a DEBUG span: kept out of
/// the traces, which filter at INFO.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let (method, path) = (request.method(), request.uri().path());
    let span = if routes::health::is_probe(path) || path == "/metrics" {
        tracing::debug_span!("request", %method, %path, trace_id = tracing::field::Empty)
    } else {
        tracing::info_span!("request", %method, %path, trace_id = tracing::field::Empty)
    };
    thumbq_common::telemetry::continue_from_http(&span, request.headers());
    span
}

/// Serves the API on `listener` until `shutdown` is cancelled, then drains open requests.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (publisher, http, background, states) =
        (state.publisher.clone(), state.settings.http.clone(), state.background.clone(), state.states.clone());
    let trusted = state.settings.access.trusted_proxies.clone();
    let bound = state.settings.redis.timeout + state.settings.store.timeout;
    info!(address = %listener.local_addr()?, "api listening");
    server::serve(listener, app(state), &http, &trusted, shutdown).await;
    // Each background job is one Redis check and at most one store read and one Redis write, each bounded.
    background.close();
    let _ = tokio::time::timeout(bound * 2, background.wait()).await;
    // The cancels this process counted into the dashboard's history (each write is bounded).
    if let Err(e) = states.flush_history().await {
        warn!(error = %e, "the dashboard's last counts were not written");
    }
    publisher.close().await;
    info!("api stopped");
    Ok(())
}

/// The whole API process: settings from the environment, logging, signals, the file store, then [`run`]. The
/// command line's `serve` (its default) is this call.
pub async fn run_from_env() -> anyhow::Result<()> {
    let settings = Settings::from_env().context("failed to read settings")?;
    let telemetry = thumbq_common::logging::init(&settings, "thumbq-api");
    let shutdown = CancellationToken::new();
    tokio::spawn(thumbq_common::shutdown::on_signal(shutdown.clone()));
    let store = thumbq_common::file_store::open(&settings.store).await?;
    let ran = run(settings, store, shutdown).await;
    // The batch exporter's thread blocks while it sends: off the runtime's threads.
    tokio::task::spawn_blocking(|| telemetry.shutdown()).await?;
    ran
}

/// Binds the configured address and serves until `shutdown` is cancelled, keeping originals and thumbnails in
/// `store` (any [`FileStore`](thumbq_common::file_store::FileStore) backend).
pub async fn run(settings: Settings, store: SharedFileStore, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.http.bind)
        .await
        .with_context(|| format!("failed to bind {}", settings.http.bind))?;
    let seeds = match &settings.access.keys_file {
        Some(path) => key_file::read_key_file(path, settings.access.key_rate)?,
        None => Vec::new(),
    };
    let state = AppState::new(settings, store, shutdown.clone())?;
    if !seeds.is_empty() {
        tokio::spawn(key_file::seed_keys(state.states.clone(), seeds));
    }
    info!(auth = ?state.settings.access.auth, "access");
    serve(listener, state, shutdown).await
}
