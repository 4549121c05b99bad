//! What keeps browsers safe around the API:
//! - `X-Content-Type-Options: nosniff` on every answer, so no browser runs an upload or an error as script.
//! - On the two HTML pages (`/dashboard`, `/docs`): a strict `Content-Security-Policy`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer` ([`lock_down`]). The Swagger UI's policy (its files from this origin only) is
//!   here, as the UI is a library's; the dashboard route sets its own (its inline script and style by hash), as only
//!   it knows its page.
//! - CORS for the origins in `THUMBQ_CORS_ORIGINS` only, with `tower-http`.
//! - Cross-site writes without a key are refused: a page elsewhere can make a visitor's browser POST a multipart form
//!   here without any preflight, which with keys off would upload (or delete) in the visitor's name.
//! - With keys off, only requests naming a loopback host, the host of `THUMBQ_PUBLIC_URL` or one of
//!   `THUMBQ_ALLOWED_HOSTS` are answered (`421` otherwise): a page elsewhere whose name is re-pointed at 127.0.0.1
//!   (DNS rebinding) is same-origin to the browser, so only the `Host` it sends gives it away.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use thumbq_common::settings::{AllowedHosts, AuthMode};

use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// The Swagger UI's policy: its scripts and styles are files served from here; it styles elements inline and
/// draws icons from `data:` URLs.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
                        base-uri 'none'; form-action 'none'";

/// Middleware: refuses requests to a host a keys-off API does not answer to and cross-site writes without a key,
/// and adds the security headers to every answer.
pub async fn secure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let probe = crate::routes::health::is_probe(request.uri().path());
    if state.settings.access.auth == AuthMode::Off && !probe && !host_allowed(&request, &state) {
        return with_headers(
            ApiError::WrongHost(
                "this API, running without keys, answers only to loopback host names, the host of \
                 THUMBQ_PUBLIC_URL and THUMBQ_ALLOWED_HOSTS"
                    .into(),
            )
            .into_response(),
            "",
        );
    }
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let keyless = !request.headers().contains_key(header::AUTHORIZATION);
    if writes && keyless && is_cross_site(request.headers(), &state) {
        return with_headers(
            ApiError::Forbidden(
                ErrorCode::CrossSite,
                "cross-site request refused: a page on another site may not upload or delete here without a key \
                 (allow its origin with THUMBQ_CORS_ORIGINS)"
                    .into(),
            )
            .into_response(),
            "",
        );
    }
    let path = request.uri().path().to_owned();
    with_headers(next.run(request).await, &path)
}

fn with_headers(mut response: Response, path: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if path == "/docs" || path.starts_with("/docs/") {
        lock_down(headers, HeaderValue::from_static(DOCS_CSP));
    }
    response
}

/// Locks an HTML page down: its content `policy`, no framing, no referrer.
pub fn lock_down(headers: &mut HeaderMap, policy: HeaderValue) {
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Whether a browser sent this request from a page of another origin (not one of `THUMBQ_CORS_ORIGINS`). Browsers
/// send `Origin` on every cross-origin POST and `Sec-Fetch-Site` on every request; a client that sends neither
/// (curl, an SDK) is not a browser acting for a visitor.
fn is_cross_site(headers: &HeaderMap, state: &AppState) -> bool {
    let fetch_site = headers.get(HeaderName::from_static("sec-fetch-site")).map(HeaderValue::as_bytes);
    if matches!(fetch_site, Some(b"same-origin" | b"none")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return matches!(fetch_site, Some(b"cross-site" | b"same-site"));
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let own = [format!("http://{host}"), format!("https://{host}"), origin_of(&state.settings.http.public_url)];
    let allowed = own.iter().chain(&state.settings.access.cors_origins).any(|o| o.eq_ignore_ascii_case(origin));
    !allowed
}

/// Whether the request's host (its `Host` header, or the authority of an absolute URI) is one a keys-off API
/// answers to. A request without one (HTTP/1.0) is not a browser's.
fn host_allowed(request: &Request, state: &AppState) -> bool {
    let host = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().unwrap_or("\u{0}"),
        None => match request.uri().authority() {
            Some(authority) => authority.as_str(),
            None => return true,
        },
    };
    let name = host_name(host);
    let listed = match &state.settings.access.allowed_hosts {
        AllowedHosts::Any => return true,
        AllowedHosts::Listed(hosts) => hosts.contains(&name),
    };
    let public = host_name(origin_of(&state.settings.http.public_url).split_once("://").map_or("", |(_, h)| h));
    listed || name == public || is_loopback_name(&name)
}

/// The host of a `host[:port]`, lower-case, without a trailing dot (`[::1]:80` gives `[::1]`).
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(host, |(inside, _)| &host[..inside.len() + 2]),
        None => {
            host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |p| p.0)
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `localhost`, `*.localhost` (RFC 6761: always loopback), or a loopback address.
fn is_loopback_name(name: &str) -> bool {
    let address = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.ends_with(".localhost")
        || address.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
}

/// The CORS layer for `THUMBQ_CORS_ORIGINS`, or `None` when the list is empty (no CORS headers at all).
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    let expose =
        ["location", "link", "retry-after", "etag", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"];
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_NONE_MATCH])
            .expose_headers(expose.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port_and_only_loopback_names_are_loopback() {
        assert_eq!(host_name("LocalHost.:8000"), "localhost");
        assert_eq!(host_name("[::1]:8000"), "[::1]");
        assert_eq!(host_name("attacker.example"), "attacker.example");
        for name in ["localhost", "app.localhost", "127.0.0.1", "127.1.2.3", "[::1]", "[::ffff:127.0.0.1]"] {
            assert!(is_loopback_name(&host_name(name)), "{name}");
        }
        for name in
            ["attacker.example", "localhost.attacker.example", "10.0.0.1", "0.0.0.0", "[::]", "127.0.0.1.nip.io"]
        {
            assert!(!is_loopback_name(&host_name(name)), "{name}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://thumbs.example.com/base/"), "https://thumbs.example.com");
        assert_eq!(origin_of("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
    }
}
