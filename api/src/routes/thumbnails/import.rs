//! `POST /thumbnails` with a JSON body: an import, `{"source": URL}` or `{"key": KEY}`. No bytes pass through the
//! API: it checks what it can (the URL against the fetch guard, the key against the prefix), records the task
//! PENDING and publishes it; a worker reads the original (`worker/src/import.rs`), and a source that cannot be read
//! makes the task FAILURE with a code.
//!
//! The image is not seen here, so the defaults that follow from it for an upload are fixed for an import: without
//! `format` the thumbnail is WebP (it keeps transparency, and every current browser shows it), and `format=auto`
//! falls back to PNG.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
};
use thumbq_common::{
    address_guard::{self as guard, Purpose},
    api_key::Scope,
    task::{Import, SourceFormat, TaskEnvelope, TaskRecord, check_key},
};
use tracing::{Instrument, info_span};

use super::{
    Accepted,
    admission::{accept, accepted},
    params::{Source, UploadParams},
};
use crate::{
    caller::Caller,
    error::{ApiError, ErrorCode},
    extract::read_json,
    state::AppState,
    upload::Upload,
};

/// Largest JSON body of an import: a URL or a key, with room to spare.
pub const MAX_BODY_BYTES: usize = 16 << 10;

/// What an import's image is taken to be for the defaults: WebP that may have transparency (see the module's doc).
pub const UNSEEN: Source = Source { format: SourceFormat::Webp, may_have_alpha: true };

/// The body of `POST /thumbnails`: an image (multipart or raw) or, with `Content-Type: application/json`, an import.
pub enum Submission {
    /// An image being uploaded.
    Upload(Upload),
    /// An import, and its body as sent (for `Idempotency-Key`).
    Import(Import, Bytes),
}

impl FromRequest<AppState> for Submission {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let json = content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Upload::from_request(req, state).await.map(Self::Upload);
        }
        // As for an upload: who may import is settled before the body is read.
        let caller = req.extensions().get::<Caller>().ok_or_else(|| ApiError::Internal("no caller".into()))?;
        caller.require(Scope::Upload)?;
        let shape = "{\"source\": \"https://…\"} or {\"key\": \"path/in/the/store\"}";
        let (import, body) = read_json(req.into_body(), MAX_BODY_BYTES, shape).await?;
        Ok(Self::Import(import, body))
    }
}

/// Checks and queues an import: the `202`'s body and `Location`.
pub async fn queue_import(
    state: &AppState,
    caller: &Caller,
    params: &UploadParams,
    import: Import,
) -> Result<(Accepted, String), ApiError> {
    check(state, &import)?;
    if params.dedupe == Some(true) {
        return Err(ApiError::BadRequest(
            ErrorCode::InvalidParameter,
            "dedupe compares an upload's bytes, which an import does not send: it applies to uploads only".into(),
        ));
    }
    let envelope = TaskEnvelope {
        callback_url: params.callback_url(&state.settings.webhook)?,
        keep_original: params.keep_original.unwrap_or(state.settings.store.keep_originals),
        import: Some(import),
        ..params.envelope(UNSEEN, &state.settings.presets, state.settings.limits.max_task_work_ms)?
    };
    // What the source is, a worker fills in once it has read it.
    let record = TaskRecord { owner: caller.key.clone(), ..TaskRecord::pending(&envelope, None) };
    let span = info_span!("task", task_id = %envelope.id);
    // Nothing stored yet, so nothing counts against the key's storage quota.
    tokio::spawn(accept(state.clone(), envelope.clone(), record, 0, None).instrument(span))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(accepted(state, &envelope))
}

/// What the API can tell of an import without reading it: a URL the fetch guard allows (a host name is checked
/// again, with its addresses, by the worker), or a key under the prefix of a configured import store.
pub fn check(state: &AppState, import: &Import) -> Result<(), ApiError> {
    match import {
        Import::Source(url) => {
            let allow_private = state.settings.import.allow_private;
            guard::check_url(url, allow_private, Purpose::Fetch)
                .map(drop)
                .map_err(|e| ApiError::BadRequest(ErrorCode::SourceRefused, e.to_string()))
        }
        Import::Key(key) => {
            require_import_store(state)?;
            check_key(key).map_err(|reason| ApiError::BadRequest(ErrorCode::InvalidImportKey, reason))
        }
    }
}

/// `400 imports_disabled` unless the service has an import store (`THUMBQ_IMPORT_URL`).
pub fn require_import_store(state: &AppState) -> Result<(), ApiError> {
    if state.settings.import.location.is_none() {
        return Err(ApiError::BadRequest(
            ErrorCode::ImportsDisabled,
            "this service has no import store: imports by key and jobs over a prefix need THUMBQ_IMPORT_URL on the \
             server"
                .into(),
        ));
    }
    Ok(())
}
