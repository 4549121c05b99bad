//! The API's errors and their HTTP form.
//!
//! Rule: handlers return [`ApiError`]; each variant's doc names its status; [`IntoResponse`] turns every one into
//! `{"error": "<message for a person>", "code": "<stable_snake_case>"}` (see [`ErrorCode`]). Causes of 5xx answers are logged here and never sent to the client.
//! Extractor rejections (bad path, bad query, bad multipart) are converted into the same shape once, through the
//! extractors of `extract.rs`; error answers made by the framework (405, 408, …) through [`json_errors`].

use axum::{
    Json,
    extract::rejection::{PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use thumbq_common::{
    broker::BrokerError, dead_letters::DeadLetterError, image_probe::ProbeError, links::SignatureError,
    state_store::StateError, task::InvalidTaskId,
};
use utoipa::ToSchema;

mod code;
pub use code::ErrorCode;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    #[schema(example = "width must be between 1 and 2048, got 0")]
    pub error: String,
    /// What went wrong, for a program: stable across versions (see docs/api.md).
    pub code: ErrorCode,
}

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a parameter, field or name is wrong or missing.
    #[error("{1}")]
    BadRequest(ErrorCode, String),
    /// 401 with `WWW-Authenticate: Bearer`: no API key (`missing_key`), or an unknown one (`invalid_key`).
    #[error("{1}")]
    Unauthorized(ErrorCode, String),
    /// 403: the key lacks the scope, or the task is another key's.
    #[error("{1}")]
    Forbidden(ErrorCode, String),
    /// 404: no such task or thumbnail.
    #[error("{1}")]
    NotFound(ErrorCode, String),
    /// 421: the request names a host this API does not answer to (keys off: see `THUMBQ_ALLOWED_HOSTS`).
    #[error("{0}")]
    WrongHost(String),
    /// 405 with `Allow`: the route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 408: the request took longer than `THUMBQ_REQUEST_TIMEOUT_SECS`.
    #[error("{0}")]
    Timeout(String),
    /// 409: the request conflicts with the task's state (cancelling a finished task).
    #[error("{1}")]
    Conflict(ErrorCode, String),
    /// 413: the upload is larger than the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 414: the URI is longer than the limit.
    #[error("{0}")]
    UriTooLong(String),
    /// 431: the headers are larger than the limit.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// 415: the upload is not an image of an accepted format.
    #[error("{1}")]
    UnsupportedMediaType(ErrorCode, String),
    /// 422: the image header is unreadable or over the pixel limit.
    #[error("{1}")]
    Unprocessable(ErrorCode, String),
    /// 429 with `Retry-After` (the seconds given): over the rate limit.
    #[error("too many requests: over the rate limit; retry in {0} s")]
    TooManyRequests(u64),
    /// 429 with `Retry-After`: the key's storage quota is used up by tasks not yet finished.
    #[error("{0}")]
    OverQuota(String),
    /// 503 with `Retry-After`: a dependency (RabbitMQ, Redis, the file store) is unavailable.
    #[error("{dependency} is unavailable; try again shortly")]
    Unavailable {
        /// Which dependency.
        dependency: &'static str,
        /// The cause, logged only.
        cause: String,
    },
    /// 503 with `Retry-After`: the service is at capacity (the work queue is full, too many uploads in flight).
    #[error("{1}")]
    Busy(ErrorCode, String),
    /// 500: a bug or an unexpected fault; the cause is logged only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(code, _)
            | Self::Unauthorized(code, _)
            | Self::Forbidden(code, _)
            | Self::NotFound(code, _)
            | Self::Conflict(code, _)
            | Self::UnsupportedMediaType(code, _)
            | Self::Unprocessable(code, _)
            | Self::Busy(code, _) => *code,
            Self::WrongHost(_) => ErrorCode::HostNotAllowed,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::Timeout(_) => ErrorCode::RequestTimeout,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::UriTooLong(_) => ErrorCode::UriTooLong,
            Self::HeadersTooLarge(_) => ErrorCode::HeadersTooLarge,
            Self::TooManyRequests(_) => ErrorCode::RateLimited,
            Self::OverQuota(_) => ErrorCode::OverQuota,
            Self::Unavailable { .. } => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(..) => StatusCode::FORBIDDEN,
            Self::NotFound(..) => StatusCode::NOT_FOUND,
            Self::WrongHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::TooManyRequests(_) | Self::OverQuota(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType(..) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } | Self::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable { dependency, cause } => {
                tracing::warn!(dependency, error = %cause, "dependency unavailable")
            }
            Self::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            Self::Busy(_, reason) => tracing::warn!(error = %reason, "at capacity"),
            _ => {}
        }
        let mut response =
            (self.status(), Json(ErrorBody { error: self.to_string(), code: self.code() })).into_response();
        let headers = response.headers_mut();
        match self {
            Self::Unavailable { .. } | Self::Busy(..) | Self::OverQuota(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            Self::TooManyRequests(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Self::Unauthorized(..) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"thumbq\""));
            }
            _ => {}
        }
        response
    }
}

impl From<ProbeError> for ApiError {
    fn from(e: ProbeError) -> Self {
        match e {
            ProbeError::Empty => Self::BadRequest(ErrorCode::MissingImage, e.to_string()),
            ProbeError::NotAnImage => Self::UnsupportedMediaType(ErrorCode::NotAnImage, e.to_string()),
            ProbeError::Unsupported(_) => Self::UnsupportedMediaType(ErrorCode::UnsupportedFormat, e.to_string()),
            ProbeError::Unreadable { .. } => Self::Unprocessable(ErrorCode::UnreadableImage, e.to_string()),
            ProbeError::TooLarge { .. } => Self::Unprocessable(ErrorCode::TooManyPixels, e.to_string()),
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        let code = match e {
            SignatureError::Expired => ErrorCode::UrlExpired,
            SignatureError::Unsigned | SignatureError::Invalid => ErrorCode::InvalidSignature,
        };
        Self::Forbidden(code, e.to_string())
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Unavailable(cause) => Self::Unavailable { dependency: "redis", cause },
            // A writer of an earlier version changed it while it was converted: try again.
            StateError::OldRecord => Self::Unavailable { dependency: "redis", cause: e.to_string() },
            StateError::Corrupt { .. } | StateError::CorruptJob { .. } => Self::Internal(e.to_string()),
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::QueueFull(_) => Self::Busy(
                ErrorCode::QueueFull,
                "the work queue is full (THUMBQ_MAX_QUEUE_DEPTH); try again later".into(),
            ),
            other => Self::Unavailable { dependency: "rabbitmq", cause: other.to_string() },
        }
    }
}

impl From<InvalidTaskId> for ApiError {
    fn from(e: InvalidTaskId) -> Self {
        Self::BadRequest(ErrorCode::InvalidTaskId, e.to_string())
    }
}

impl From<DeadLetterError> for ApiError {
    fn from(e: DeadLetterError) -> Self {
        match e {
            DeadLetterError::Broker(e) => e.into(),
            DeadLetterError::State(e) => e.into(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        let text = e.body_text();
        // serde's own wording for a field `deny_unknown_fields` refuses.
        let code =
            if text.contains("unknown field") { ErrorCode::UnknownParameter } else { ErrorCode::InvalidParameter };
        Self::BadRequest(code, format!("invalid query parameters: {text}"))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::BadRequest(ErrorCode::InvalidParameter, format!("invalid path: {}", e.body_text()))
    }
}

/// Middleware: an error answer made outside the handlers (axum's `405`, the timeout layer's `408`, a body-limit
/// `413`, the documentation routes' `404`) gets the same JSON body as every other error; its headers (`Allow`)
/// stay.
pub async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/json");
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = match status {
        // axum adds the `Allow` header after this middleware has run.
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed("method not allowed; see the Allow header".into()),
        StatusCode::REQUEST_TIMEOUT => ApiError::Timeout("the request took too long".into()),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge("the request body is too large".into()),
        StatusCode::NOT_FOUND => ApiError::NotFound(ErrorCode::RouteNotFound, "no such route; see /docs".into()),
        other => {
            let reason = other.canonical_reason().unwrap_or("error").to_lowercase();
            let (mut parts, _) = response.into_parts();
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            parts.headers.remove(header::CONTENT_LENGTH);
            let code = if other.is_server_error() { ErrorCode::Internal } else { ErrorCode::InvalidParameter };
            let body = serde_json::to_vec(&ErrorBody { error: reason, code }).unwrap_or_default();
            return Response::from_parts(parts, axum::body::Body::from(body));
        }
    };
    let (parts, _) = response.into_parts();
    let mut json = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}

/// A query parameter within `range` (inclusive), or the 400 that names it and its bounds.
pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        let message = format!("{name} must be between {} and {}, got {value}", range.start(), range.end());
        Err(ApiError::BadRequest(ErrorCode::InvalidParameter, message))
    }
}

/// An I/O failure of the file store.
pub fn store_unavailable(e: &std::io::Error) -> ApiError {
    ApiError::Unavailable { dependency: "the file store", cause: e.to_string() }
}
