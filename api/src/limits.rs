//! Limits checked on a request's head, before any of its body is read: a body announced larger than the upload
//! limit, an overlong URI, oversized headers. Each gets its JSON error at once, instead of a `408` after the client
//! has trickled its bytes for a minute.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{error::ApiError, upload::MULTIPART_OVERHEAD};

/// The longest URI answered; longer ones are `414`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) answered; more are `431`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Middleware: refuses a request whose head breaks a limit, with the limit in the message.
pub async fn limit_request(State(max_upload): State<usize>, request: Request, next: Next) -> Response {
    let uri = request.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!("the URI is {uri} bytes, over the limit of {MAX_URI_BYTES}"))
            .into_response();
    }
    let headers: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers > MAX_HEADER_BYTES {
        let message = format!("the headers are {headers} bytes, over the limit of {MAX_HEADER_BYTES}");
        return ApiError::HeadersTooLarge(message).into_response();
    }
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > (max_upload + MULTIPART_OVERHEAD) as u64) {
        return crate::upload::too_large(max_upload).into_response();
    }
    next.run(request).await
}
