//! `GET /dashboard`: the operator's console, one self-contained page (embedded in the binary, no external requests)
//! that uses only the public API: queues, the last hour's history, workers, a task browser with detail and actions
//! (see docs/operations.md). `GET /favicon.svg` (and `/favicon.ico`): its icon.

use axum::{Router, http::header, response::Html, routing::get};

use crate::state::AppState;

/// The page, compiled into the binary.
pub const PAGE: &str = include_str!("../dashboard.html");

/// The console's icon (browsers also ask for `/favicon.ico`: the same picture).
pub const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
    <rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1d2330\"/><rect x=\"3\" y=\"3\" width=\"6\" height=\"6\" fill=\"#3b6cf6\"/>\
    <rect x=\"8\" y=\"8\" width=\"5\" height=\"5\" fill=\"#fff\"/></svg>";

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(get_dashboard))
        .route("/favicon.svg", get(get_favicon))
        .route("/favicon.ico", get(get_favicon))
}

/// The icon, cached for a day; not in the OpenAPI document (an asset of the page, not an API).
async fn get_favicon() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON)
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
