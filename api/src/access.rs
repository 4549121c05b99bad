//! Who is calling, and whether they may: API keys (`Authorization: Bearer <key>`), scopes and rate limits.
//!
//! [`authenticate`] runs on every request but the open ones (health, readiness, the docs, the dashboard page): it
//! resolves the caller (a key, or an anonymous client address) and charges the request to its rate limit, in one
//! Redis round trip. Handlers then say what they need with [`Caller::require`]. With `THUMBQ_AUTH=off` an anonymous
//! caller may do everything; with keys on, only what is open (thumbnail downloads by name).

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use thumbq_common::{
    access::{Scope, Scopes},
    settings::AuthMode,
    state_store::access::RateVerdict,
};

use crate::{error::ApiError, state::AppState};

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's name; `None` for a request without a key.
    pub key: Option<String>,
    /// What the caller may do.
    pub scopes: Scopes,
    /// The key's storage quota in bytes, if it has one.
    pub quota_bytes: Option<u64>,
}

impl Caller {
    /// Ok when the caller may use `scope`; else `401` (no key) or `403` (a key without the scope).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match &self.key {
            _ if self.scopes.allow(scope) => Ok(()),
            None => Err(ApiError::Unauthorized(format!(
                "this needs an API key with the `{scope}` scope: send `Authorization: Bearer <key>`"
            ))),
            Some(name) => Err(ApiError::Forbidden(format!("the key {name:?} does not have the `{scope}` scope"))),
        }
    }

    /// Whether the caller may act on a task uploaded by `owner`: its own (with `upload`), or any (with `admin`).
    pub fn require_owner_of(&self, owner: Option<&str>) -> Result<(), ApiError> {
        if self.scopes.allow(Scope::Admin) {
            return Ok(());
        }
        self.require(Scope::Upload)?;
        match (&self.key, owner) {
            (Some(key), Some(owner)) if key == owner => Ok(()),
            _ => Err(ApiError::Forbidden("only the key that uploaded a task, or an admin key, may change it".into())),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Absent only on routes `authenticate` leaves open, which take no caller.
        parts.extensions.get::<Self>().cloned().ok_or_else(|| ApiError::Internal("no caller on this route".into()))
    }
}

/// Paths anyone may use without a key or a rate limit: probes, the documentation, the dashboard page (its data
/// comes from routes that do need a key).
fn is_open(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/openapi.json" | "/dashboard") || path.starts_with("/docs")
}

/// Middleware: resolves the [`Caller`] and charges the request to its rate limit (`429` past it), adding the
/// `RateLimit-*` headers to the answer.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let access = &state.settings.access;
    let (caller, verdict) = match (access.auth, bearer(request.headers())) {
        (AuthMode::Keys, Some(Ok(key))) => match state.states.authorize(key, access.key_rate).await {
            Ok(Some(found)) => {
                let caller = Caller { key: Some(found.name), scopes: found.scopes, quota_bytes: found.quota_bytes };
                (caller, Some(found.rate))
            }
            Ok(None) => return ApiError::Unauthorized("unknown or revoked API key".into()).into_response(),
            Err(e) => return ApiError::from(e).into_response(),
        },
        (AuthMode::Keys, Some(Err(()))) => {
            return ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into()).into_response();
        }
        (mode, _) => {
            let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            let bucket = format!("addr:{}", address.map_or_else(|| "unknown".into(), |ip| ip.to_string()));
            // Without a key the limit protects the service, not an account: while Redis is down, downloads of
            // stored thumbnails keep working unlimited rather than failing.
            let verdict = match state.states.charge(&bucket, access.anonymous_rate).await {
                Ok(verdict) => Some(verdict),
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit not checked");
                    None
                }
            };
            let scopes = if mode == AuthMode::Off { Scopes::all() } else { Scopes::default() };
            (Caller { key: None, scopes, quota_bytes: None }, verdict)
        }
    };
    if let Some(verdict) = verdict.filter(|v| !v.allowed) {
        let retry_after = verdict.retry_after_us.div_ceil(1_000_000).max(1);
        let mut response = ApiError::TooManyRequests(retry_after).into_response();
        rate_headers(response.headers_mut(), verdict);
        return response;
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    // An unlimited bucket (rate `off`) never has a reset time: no headers then.
    if let Some(verdict) = verdict.filter(|v| v.reset_us > 0) {
        rate_headers(response.headers_mut(), verdict);
    }
    response
}

/// The key in `Authorization: Bearer <key>`; `Err` for another scheme or a malformed header.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let key = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|k| !k.is_empty());
    Some(key.ok_or(()))
}

/// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) headers of the IETF draft.
fn rate_headers(headers: &mut HeaderMap, verdict: RateVerdict) {
    let reset = verdict.reset_us.div_ceil(1_000_000);
    let values = [
        ("ratelimit-limit", u64::from(verdict.limit)),
        ("ratelimit-remaining", u64::from(verdict.remaining)),
        ("ratelimit-reset", reset),
    ];
    for (name, value) in values {
        headers.insert(name, HeaderValue::from(value));
    }
}
