//! The uploaded image, from either request shape the API accepts: a `multipart/form-data` file field named `image`,
//! or the raw request body with an `image/*` (or `application/octet-stream`) content type.

use axum::{
    body::Bytes,
    extract::{FromRequest, Multipart, Request},
    http::{StatusCode, header},
};

use crate::{error::ApiError, state::AppState};

/// The multipart field that carries the image.
pub const FIELD: &str = "image";

/// Room for multipart boundaries and part headers on top of the image itself.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The bytes of an uploaded image, not yet validated.
pub struct Upload(pub Bytes);

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let max = state.settings.limits.max_upload_bytes;
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
        Ok(Self(bytes))
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
