//! `DELETE /thumbnails/{name}`: erasure. The thumbnail, its original and its task record go; a task still running is
//! cancelled first, so no worker writes the thumbnail back (a worker that finds its task revoked or gone after
//! writing removes what it wrote).

use axum::{extract::State, http::StatusCode};
use thumbq_common::{access::Scope, task::TaskRecord};

use super::parse_name;
use crate::{
    access::Caller,
    error::{ApiError, ErrorBody, store_unavailable},
    extract::Path,
    state::AppState,
};

/// Delete a thumbnail (with all its task's renditions), its original and its task record (erasure).
///
/// `204` whether or not anything was left to delete, so a retried request is safe; `GET` answers `404` afterwards.
/// With keys on, the key that uploaded the task may delete it, an `admin` key any; a thumbnail whose record has
/// expired (so whose owner is unknown) needs `admin`.
#[utoipa::path(
    delete,
    path = "/thumbnails/{name}",
    tag = "thumbnails",
    security(("api_key" = ["upload"])),
    params(("name" = String, Path, description = "The thumbnail's name, `<uuid>.<ext>`, or any of its renditions' (which \
        erases them all)",
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-[a-z0-9_]{1,32})?\.(png|jpg|webp|avif)$",
        example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")),
    responses(
        (status = 204, description = "Deleted, or nothing was there"),
        (status = 400, description = "Not a thumbnail name", body = ErrorBody),
        (status = 503, description = "Redis or the file store is unavailable; nothing is reported deleted", body = ErrorBody),
    )
)]
pub async fn delete_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Upload)?;
    let name = parse_name(&name)?;
    let record = state.states.get(name.id).await?.filter(|r| r.has_file(&name));
    match &record {
        Some(record) => caller.require_owner_of(record.owner.as_deref())?,
        // Expired or already deleted: whose it was is unknown, so only an admin may erase what is still stored.
        None => {
            if state.store.get_thumbnail(&name).await.map_err(|e| store_unavailable(&e))?.is_some() {
                caller.require(Scope::Admin)?;
            }
        }
    }
    if let Some(record) = record.as_ref().filter(|r| !r.status.is_terminal()) {
        state.states.revoke(record.id).await?;
    }
    // Every file of the task: with renditions, naming one erases them all.
    let files = record.as_ref().map_or_else(|| vec![name.clone()], TaskRecord::files);
    for file in &files {
        state.store.delete_thumbnail(file).await.map_err(|e| store_unavailable(&e))?;
    }
    state.store.delete_original(name.id).await.map_err(|e| store_unavailable(&e))?;
    if let Some(record) = &record {
        state.states.delete(record).await?;
    }
    tracing::info!(task_id = %name.id, "thumbnail deleted");
    Ok(StatusCode::NO_CONTENT)
}
