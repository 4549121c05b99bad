//! `GET /dashboard`: one self-contained page (embedded in the binary, no external requests) that polls `/stats`,
//! `/workers` and `/tasks` every 2 s: queue depths, dead letters, throughput chart, workers, recent tasks.

use axum::{Router, response::Html, routing::get};

use crate::state::AppState;

/// The page, compiled into the binary.
pub const PAGE: &str = include_str!("../dashboard.html");

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/dashboard", get(get_dashboard))
}

/// The live dashboard (HTML).
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "workers",
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String)),
)]
pub async fn get_dashboard() -> Html<&'static str> {
    Html(PAGE)
}
