//! `GET /dashboard`: the operator's console, one self-contained page (embedded in the binary, no external requests)
//! that uses only the public API: queues, the last hour's history, workers, a task browser with detail and actions
//! (see docs/operations.md). `GET /favicon.svg` (and `/favicon.ico`): its icon.

use std::sync::LazyLock;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

use crate::{headers::lock_down, state::AppState};

/// The page, compiled into the binary.
pub const PAGE: &str = include_str!("../dashboard.html");

/// The dashboard's policy: its one inline script and one inline style, allowed by their SHA-256, and requests to
/// this origin.
static DASHBOARD_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = |open: &str, close: &str| {
        let body = PAGE.split_once(open).and_then(|(_, rest)| rest.split_once(close)).map_or("", |(body, _)| body);
        format!("'sha256-{}'", STANDARD.encode(Sha256::digest(body.as_bytes())))
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self'; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        hash("<script>", "</script>"),
        hash("<style>", "</style>")
    )
});

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
async fn get_favicon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON)
}

/// The live dashboard (HTML).
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "workers",
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String)),
)]
pub async fn get_dashboard() -> Response {
    let mut response = Html(PAGE).into_response();
    // The page's own policy: only this module knows which inline script and style it holds.
    if let Ok(policy) = HeaderValue::from_str(&DASHBOARD_CSP) {
        lock_down(response.headers_mut(), policy);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_policy_names_its_inline_script_and_style_by_hash() {
        let csp = DASHBOARD_CSP.as_str();
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(!csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(PAGE.matches("<script>").count() == 1 && PAGE.matches("<style>").count() == 1);
    }
}
