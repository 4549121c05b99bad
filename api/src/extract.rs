//! The extractors handlers use: axum's `Path` and `Query` whose rejections are [`ApiError`]s, declared once here
//! instead of handled in every handler.

use axum::extract::FromRequestParts;

use crate::error::ApiError;

/// A path parameter; a bad one is a JSON `400`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters; unknown or bad ones are a JSON `400`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);
