//! Who is calling, and whether they may: API keys (`Authorization: Bearer <key>`), scopes, ownership and rate limits.
//!
//! [`authenticate`] runs on every request but the open ones (health, readiness, the docs, the dashboard page): it
//! resolves the caller (a key, or an anonymous client address, see [`client_ip`]) and charges the request to its
//! rate limit, in one Redis round trip. A request with an unknown or malformed key is charged to its address too,
//! then refused. Handlers then say what they need with [`Caller::require`], and a task is the caller's to see with
//! [`Caller::owned`]. With `THUMBQ_AUTH=off` an anonymous caller may do everything; with keys on, only what is open
//! (thumbnail downloads by name).

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use thumbq_common::{
    TaskRecord,
    api_key::{Scope, Scopes},
    settings::AuthMode,
    state_store::api_keys::RateVerdict,
};

use crate::{
    client::client_ip,
    error::{ApiError, ErrorCode},
    state::AppState,
};

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
            None => Err(ApiError::Unauthorized(
                ErrorCode::MissingKey,
                format!("this needs an API key with the `{scope}` scope: send `Authorization: Bearer <key>`"),
            )),
            Some(name) => Err(ApiError::Forbidden(
                ErrorCode::MissingScope,
                format!("the key {name:?} does not have the `{scope}` scope"),
            )),
        }
    }

    /// Whether the caller may see and act on a task uploaded by `owner`: an `admin` key (or anyone, with keys off)
    /// any task; another key only its own.
    pub fn owns(&self, owner: Option<&str>) -> bool {
        self.scopes.allow(Scope::Admin) || self.key.as_deref().is_some_and(|key| owner == Some(key))
    }

    /// The task's record, when the caller [owns](Self::owns) it; else the `404` of an unknown task, so another
    /// key's task is never confirmed to exist.
    pub fn owned(&self, record: TaskRecord) -> Result<TaskRecord, ApiError> {
        if self.owns(record.owner.as_deref()) {
            Ok(record)
        } else {
            Err(ApiError::NotFound(ErrorCode::TaskNotFound, format!("no task {}", record.id)))
        }
    }

    /// The owner a listing is limited to: `None` (every task) for an `admin` caller, else the caller's key.
    pub fn listing_owner(&self) -> Option<&str> {
        if self.scopes.allow(Scope::Admin) { None } else { self.key.as_deref() }
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
    crate::routes::health::is_probe(path) || matches!(path, "/openapi.json" | "/dashboard") || path.starts_with("/docs")
}

/// Middleware: resolves the [`Caller`] and charges the request to its rate limit (`429` past it), adding the
/// `RateLimit-*` headers to the answer.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let access = &state.settings.access;
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let address = peer.map(|ip| client_ip(ip, request.headers(), &access.trusted_proxies));
    let (caller, verdict) = match (access.auth, bearer(request.headers())) {
        (AuthMode::Keys, Some(Ok(key))) => match state.states.authorize(key, access.key_rate).await {
            Ok(Some(found)) => {
                let caller = Caller { key: Some(found.name), scopes: found.scopes, quota_bytes: found.quota_bytes };
                (caller, Some(found.rate))
            }
            Ok(None) => return refuse(&state, address, "unknown or revoked API key").await,
            Err(e) => return ApiError::from(e).into_response(),
        },
        (AuthMode::Keys, Some(Err(()))) => {
            return refuse(&state, address, "the Authorization header must be `Bearer <key>`").await;
        }
        (mode, _) => {
            let scopes = if mode == AuthMode::Off { Scopes::all() } else { Scopes::default() };
            (Caller { key: None, scopes, quota_bytes: None }, charge_address(&state, address).await)
        }
    };
    if let Some(verdict) = verdict.filter(|v| !v.allowed) {
        return too_many(verdict);
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    // An unlimited bucket (rate `off`) never has a reset time: no headers then.
    if let Some(verdict) = verdict.filter(|v| v.reset_us > 0) {
        rate_headers(response.headers_mut(), verdict);
    }
    response
}

/// A request whose key is unknown or malformed: charged to its address like a request without a key (else a
/// made-up key would be a way around the anonymous limit), then `401`, or `429` past the limit.
async fn refuse(state: &AppState, address: Option<IpAddr>, why: &str) -> Response {
    match charge_address(state, address).await.filter(|v| !v.allowed) {
        Some(verdict) => too_many(verdict),
        None => ApiError::Unauthorized(ErrorCode::InvalidKey, why.into()).into_response(),
    }
}

/// Charges a request to the bucket of its client's address (see [`client_ip`]); `None` when the anonymous limit
/// is off or could not be checked.
async fn charge_address(state: &AppState, address: Option<IpAddr>) -> Option<RateVerdict> {
    let limit = state.settings.access.anonymous_rate;
    if limit.rate.interval_us() == 0 {
        return None;
    }
    let bucket = format!("addr:{}", address.map_or_else(|| "unknown".into(), |ip| ip.to_string()));
    // Without a key the limit protects the service, not an account: while Redis is down, downloads of stored
    // thumbnails keep working unlimited rather than failing.
    match state.states.charge(&bucket, limit).await {
        Ok(verdict) => Some(verdict),
        Err(e) => {
            tracing::warn!(error = %e, "rate limit not checked");
            None
        }
    }
}

/// The `429` of a spent rate limit, with `Retry-After` and the `RateLimit-*` headers.
fn too_many(verdict: RateVerdict) -> Response {
    let retry_after = verdict.retry_after_us.div_ceil(1_000_000).max(1);
    let mut response = ApiError::TooManyRequests(retry_after).into_response();
    rate_headers(response.headers_mut(), verdict);
    response
}

/// The key in `Authorization: Bearer <key>` (the scheme name in any case, RFC 9110 11.1); `Err` for another scheme
/// or a malformed header.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|k| !k.is_empty());
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
