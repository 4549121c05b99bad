//! `DELETE /thumbnails/{name}`: erasure. The thumbnail, its original and its task record go; a task still running is
//! cancelled first, so no worker writes the thumbnail back (a worker that finds its task revoked or gone after
//! writing removes what it wrote).

use axum::{extract::State, http::StatusCode};
use thumbq_common::{
    api_key::Scope,
    task::{NegotiatedName, OutputFormat, ThumbnailName},
};

use super::parse_name;
use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode, store_unavailable},
    extract::Path,
    state::AppState,
};

/// Delete a thumbnail (with all its task's renditions), its original and its task record (erasure).
///
/// `204` whether or not anything was left to delete, so a retried request is safe; `GET` answers `404` afterwards.
/// A name that is not one of its task's files is a `404` that erases nothing. With keys on, the key that uploaded
/// the task may delete it, an `admin` key any (another key's task is a `404`); a thumbnail whose record has expired
/// (so whose owner is unknown) needs `admin`.
#[utoipa::path(
    delete,
    path = "/thumbnails/{name}",
    tag = "thumbnails",
    security(("api_key" = ["upload"])),
    params(("name" = String, Path, description = "The thumbnail's name, `<uuid>.<ext>`, or any of its renditions' or \
        `format=auto` variants' (which erases them all), or a name without `.<ext>` as `format=auto` hands out",
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-[a-z0-9_]{1,32})?(\.(png|jpg|webp|avif|gif))?$",
        example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")),
    responses(
        (status = 204, description = "Deleted, or nothing was there"),
        (status = 400, description = "Not a thumbnail name", body = ErrorBody),
        (status = 401, description = "Keys are on and the request has no valid key", body = ErrorBody),
        (status = 403, description = "The key lacks the `upload` scope, or (for a thumbnail without a record) `admin`", body = ErrorBody),
        (status = 404, description = "The task has no file of that name, or is another key's", body = ErrorBody),
        (status = 429, description = "Over the rate limit", body = ErrorBody),
        (status = 503, description = "Redis or the file store is unavailable; nothing is reported deleted", body = ErrorBody),
    )
)]
pub async fn delete_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Upload)?;
    // A name without a format (`format=auto`'s) stands for any of its files: deleting one erases them all.
    let name = match name.parse::<NegotiatedName>() {
        Ok(negotiated) => {
            let files = state.states.get(negotiated.id).await?.map(|record| record.files()).unwrap_or_default();
            let file = files.into_iter().find(|file| file.negotiated() == negotiated);
            file.unwrap_or_else(|| negotiated.in_format(OutputFormat::Jpeg))
        }
        Err(()) => parse_name(&name)?,
    };
    let Some(record) = state.states.get(name.id).await? else {
        return erase_unrecorded(&state, &caller, &name).await;
    };
    // Ownership by the task's id, before the name is looked at: another key's task is not there for this caller.
    let record = caller.owned(record)?;
    if !record.has_file(&name) {
        // Not one of the task's files (another extension or rendition): nothing is touched.
        return Err(ApiError::NotFound(ErrorCode::ThumbnailNotFound, format!("no thumbnail named {name}")));
    }
    if !record.status.is_terminal() {
        state.states.revoke(record.id).await?;
    }
    // Every file of the task: with renditions, naming one erases them all.
    for file in &record.files() {
        state.store.delete_thumbnail(file).await.map_err(|e| store_unavailable(&e))?;
    }
    state.store.delete_original(record.id).await.map_err(|e| store_unavailable(&e))?;
    state.states.erase(&record).await?;
    tracing::info!(task_id = %record.id, "thumbnail deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Erasure of a thumbnail whose record has expired, was lost, or is already erased: whose it was is unknown, so
/// only an `admin` key may erase what is still stored; with nothing stored it is done already (`204`).
async fn erase_unrecorded(state: &AppState, caller: &Caller, name: &ThumbnailName) -> Result<StatusCode, ApiError> {
    let mut stored = false;
    for format in OutputFormat::ALL {
        let variant = name.negotiated().in_format(format);
        stored |= state.store.get_thumbnail(&variant).await.map_err(|e| store_unavailable(&e))?.is_some();
    }
    if !stored {
        return Ok(StatusCode::NO_CONTENT);
    }
    caller.require(Scope::Admin)?;
    // Every format of it: a `format=auto` thumbnail's variants go together.
    for format in OutputFormat::ALL {
        let variant = name.negotiated().in_format(format);
        state.store.delete_thumbnail(&variant).await.map_err(|e| store_unavailable(&e))?;
    }
    state.store.delete_original(name.id).await.map_err(|e| store_unavailable(&e))?;
    tracing::info!(task_id = %name.id, "thumbnail without a record deleted");
    Ok(StatusCode::NO_CONTENT)
}
