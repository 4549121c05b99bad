//! The extractors handlers use: axum's `Path` and `Query` whose rejections are [`ApiError`]s, declared once here
//! instead of handled in every handler.

use axum::{
    body::{Body, Bytes},
    extract::FromRequestParts,
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// A path parameter; a bad one is a JSON `400`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters; unknown or bad ones are a JSON `400`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// A JSON request body of at most `max` bytes, as `T` and as sent (for `Idempotency-Key`): `413` past `max`, `400`
/// (`malformed_body`, saying what `shape` the route takes) for anything that is not a `T`. Read here rather than by
/// axum's `Json`, whose limit is the router's (an upload's) and whose rejections are its own.
pub async fn read_json<T: DeserializeOwned>(body: Body, max: usize, shape: &str) -> Result<(T, Bytes), ApiError> {
    let mut read = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(ErrorCode::UploadCutOff, format!("the body was cut off: {e}")))?;
        if read.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(format!("this JSON body is at most {max} bytes")));
        }
        read.extend_from_slice(&chunk);
    }
    let value = serde_json::from_slice(&read)
        .map_err(|e| ApiError::BadRequest(ErrorCode::MalformedBody, format!("the body is {shape}: {e}")))?;
    Ok((value, Bytes::from(read)))
}
