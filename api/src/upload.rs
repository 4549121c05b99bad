//! The uploaded image, from either request shape the API accepts: a `multipart/form-data` file field named `image`,
//! or the raw request body with an `image/*` (or `application/octet-stream`) content type. Before any of the body is
//! read, the upload takes its share of the API's upload memory (`THUMBQ_UPLOAD_MEMORY_MB`).

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{FromRequest, Multipart, Request},
    http::{HeaderMap, StatusCode, header},
};
use tokio::sync::OwnedSemaphorePermit;

use crate::{error::ApiError, state::AppState};

/// The multipart field that carries the image.
pub const FIELD: &str = "image";

/// Room for multipart boundaries and part headers on top of the image itself.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// How long an upload waits for room in the upload memory before it is answered `503`.
const MEMORY_WAIT: Duration = Duration::from_secs(10);

/// The bytes of an uploaded image, not yet validated, and the share of upload memory they hold until dropped.
pub struct Upload {
    /// The image.
    pub bytes: Bytes,
    /// The upload's share of `THUMBQ_UPLOAD_MEMORY_MB`.
    pub reservation: OwnedSemaphorePermit,
}

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let max = state.settings.limits.max_upload_bytes;
        let reservation = reserve(req.headers(), state).await?;
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let bytes = if content_type.starts_with("multipart/form-data") {
            image_field(
                Multipart::from_request(req, state).await.map_err(|e| ApiError::BadRequest(e.body_text()))?,
                max,
            )
            .await?
        } else if content_type.starts_with("image/") || content_type.starts_with("application/octet-stream") {
            Bytes::from_request(req, state).await.map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => too_large(max),
                _ => ApiError::BadRequest(e.body_text()),
            })?
        } else if content_type.is_empty() {
            return Err(ApiError::BadRequest(format!("no Content-Type: {}", how_to_upload())));
        } else {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {content_type} is not accepted: {}",
                how_to_upload()
            )));
        };
        if bytes.len() > max {
            return Err(too_large(max));
        }
        Ok(Self { bytes, reservation })
    }
}

/// Waits (at most [`MEMORY_WAIT`]) for room in the upload memory for this request's body: twice its announced
/// length (reading holds the chunks and then one contiguous copy for a moment), or twice the limit when no length
/// is announced; never more than the whole budget, so the largest upload still fits alone.
async fn reserve(headers: &HeaderMap, state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    let limits = &state.settings.limits;
    let most = limits.max_upload_bytes + MULTIPART_OVERHEAD;
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let kib = (2 * announced.unwrap_or(most).min(most)).div_ceil(1024);
    let kib = u32::try_from(kib).unwrap_or(u32::MAX).min(limits.upload_memory_mb.saturating_mul(1024));
    match tokio::time::timeout(MEMORY_WAIT, state.upload_memory.clone().acquire_many_owned(kib)).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(closed)) => Err(ApiError::Internal(closed.to_string())),
        Err(_) => Err(ApiError::Busy("too many uploads in flight (THUMBQ_UPLOAD_MEMORY_MB); try again shortly".into())),
    }
}

/// Reads the `image` field, naming what was sent instead when it is missing.
async fn image_field(mut multipart: Multipart, max: usize) -> Result<Bytes, ApiError> {
    let mut seen = Vec::new();
    loop {
        let field = multipart.next_field().await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(max),
            _ => ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text())),
        })?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or("").to_owned();
        if name == FIELD {
            return field.bytes().await.map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => too_large(max),
                _ => ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text())),
            });
        }
        seen.push(name);
    }
    let found = if seen.is_empty() { "no fields".to_owned() } else { format!("field(s) {}", seen.join(", ")) };
    Err(ApiError::BadRequest(format!("missing multipart field `{FIELD}` (found {found})")))
}

/// The `413` of an upload over `max` bytes.
pub fn too_large(max: usize) -> ApiError {
    ApiError::TooLarge(format!("the upload is larger than the limit of {max} bytes"))
}

fn how_to_upload() -> String {
    format!("send the image as multipart/form-data field `{FIELD}`, or as the raw body with an image/* Content-Type")
}
