//! The HTTP routes, one module per resource.

pub mod dashboard;
pub mod dead_letters;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod stats;
pub mod tasks;
pub mod thumbnails;
pub mod workers;

use axum::Router;

use crate::state::AppState;

/// Every route of the API (without the documentation routes).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(thumbnails::router())
        .merge(tasks::router())
        .merge(jobs::router())
        .merge(dead_letters::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(workers::router())
        .merge(stats::router())
        .merge(dashboard::router())
}
