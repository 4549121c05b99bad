//! `POST /tasks/{id}/renditions`: more thumbnails from a task's kept original (`THUMBQ_KEEP_ORIGINALS`), as a new
//! task with the upload's parameters. No bytes pass through the API: the new task reads the kept original, and
//! never deletes it (the task it belongs to does, or the sweep once that task's record has expired).

use axum::{extract::State, response::Response};
use thumbq_common::{
    image_probe,
    task::{SourceFormat, TaskEnvelope, TaskRecord},
};
use tracing::{Instrument, info_span};

use super::{
    admission::{accept, accepted},
    params::{Source, UploadParams},
};
use thumbq_common::api_key::Scope;

use crate::{
    caller::Caller,
    error::{ApiError, ErrorBody, ErrorCode, store_unavailable},
    extract::{Path, Query},
    state::AppState,
};

/// How much of the original is read to tell its transparency (`format=auto`): its header.
const HEAD_BYTES: usize = 64 << 10;

/// Make more renditions of a task's image from its kept original.
///
/// A new task, with the query parameters of an upload (`sizes`, `preset`, `format`, `width`/`height`…), made from the
/// original that task `id` kept (`THUMBQ_KEEP_ORIGINALS`, `keep_original`): `202` with the same body as an
/// upload's. `409` (`original_not_kept`) when that original is gone: deleted after its task (`keep_original=false`,
/// or the setting off), or its task failed.
#[utoipa::path(
    post,
    path = "/tasks/{id}/renditions",
    tag = "tasks",
    security(("api_key" = ["upload"])),
    params(("id" = uuid::Uuid, Path, description = "The task whose kept original the renditions are made from",
        example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11"), UploadParams),
    responses(
        (status = 202, description = "Queued: the new task, as an upload's answer", body = super::Accepted,
            headers(("Location" = String, description = "Path of the new thumbnail"))),
        (status = 400, description = "Not a task id, or a bad parameter", body = ErrorBody),
        (status = 401, description = "Keys are on and the request has no valid key", body = ErrorBody),
        (status = 403, description = "The key lacks the `upload` scope", body = ErrorBody),
        (status = 404, description = "No such task (never existed, expired, or another key's)", body = ErrorBody),
        (status = 409, description = "The task's original was not kept", body = ErrorBody,
            example = json!({"error": "the original of task 6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11 was not kept", "code": "original_not_kept"})),
        (status = 503, description = "Redis, RabbitMQ or the file store is unavailable", body = ErrorBody),
    )
)]
pub async fn create_renditions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<UploadParams>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Upload)?;
    let from = caller.owned(crate::routes::tasks::record_of(&state, &id).await?)?;
    let id = from.id;
    let not_kept = || {
        ApiError::Conflict(
            ErrorCode::OriginalNotKept,
            format!(
                "the original of task {id} was not kept (keep_original=false, THUMBQ_KEEP_ORIGINALS=0, or the task \
                 failed): upload the image again"
            ),
        )
    };
    let format = from.source.as_ref().and_then(|info| SourceFormat::ALL.into_iter().find(|f| f.name() == info.format));
    let head = state.store.original_head(id, HEAD_BYTES).await.map_err(|e| store_unavailable(&e))?;
    let (Some(format), Some(head)) = (format, head) else { return Err(not_kept()) };
    let source = Source { format, may_have_alpha: image_probe::may_have_alpha(&head, format) };
    let envelope = TaskEnvelope {
        callback_url: params.callback_url(&state.settings.webhook)?,
        source_task: Some(id),
        ..params.envelope(source, &state.settings.presets, state.settings.limits.max_task_work_ms)?
    };
    let record = TaskRecord { owner: caller.key.clone(), ..TaskRecord::pending(&envelope, from.source.clone()) };
    let span = info_span!("task", task_id = %envelope.id, from = %id);
    // No original of its own, so nothing counts against the key's storage quota.
    tokio::spawn(accept(state.clone(), envelope.clone(), record, 0, None).instrument(span))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let (body, location) = accepted(&state, &envelope);
    crate::idempotency::answer(body, &location)
}
