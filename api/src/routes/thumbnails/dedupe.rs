//! `dedupe=true` (or `THUMBQ_DEDUPE=1`): an upload whose original (its SHA-256, hashed as it streams to the store)
//! and parameters match an earlier successful task of the same API key gets copies of that task's thumbnails under
//! its own names, recorded as SUCCESS at once with `deduplicated_from`, instead of a task that would decode the same
//! bytes again. The copies are its own: deleting either task leaves the other whole. Uploads with a `callback_url`
//! are never deduplicated (the webhook is a worker's to send).

use chrono::Utc;
use sha2::{Digest, Sha256};
use thumbq_common::task::{StateChange, TaskEnvelope, TaskRecord, TaskStatus};

use crate::idempotency::BodyDigest;
use crate::{
    error::{ApiError, store_unavailable},
    state::AppState,
};

/// The original's SHA-256 and what the task makes: each output's name (its task id left out) and arguments.
pub fn fingerprint(original: &BodyDigest, envelope: &TaskEnvelope) -> String {
    let original = original.lock().expect("not poisoned").clone().finalize();
    let outputs: Vec<_> =
        envelope.outputs().into_iter().map(|(name, args)| (name.to_string().split_off(36), args)).collect();
    let made = Sha256::digest(serde_json::to_vec(&outputs).expect("outputs serialise"));
    format!("{original:x}:{made:x}")
}

/// Makes the task `record` describes from the earlier task remembered for `fingerprint`, if it succeeded and its
/// thumbnails are all stored: copies them under the new task's names and records it as SUCCESS. `None`: no such
/// task, and the upload is queued as usual.
pub async fn copy(
    state: &AppState,
    envelope: &TaskEnvelope,
    record: &TaskRecord,
    fingerprint: &str,
) -> Result<Option<TaskRecord>, ApiError> {
    let owner = record.owner.clone().unwrap_or_default();
    let Some(from) = state.states.dedupe_candidate(&owner, fingerprint).await? else { return Ok(None) };
    let Some(from) = state.states.get(from).await? else { return Ok(None) };
    let (sources, targets) = (from.files(), envelope.outputs());
    if from.status != TaskStatus::Success || from.owner != record.owner || sources.len() != targets.len() {
        return Ok(None);
    }
    for (source, (target, _)) in sources.iter().zip(&targets) {
        let Some(bytes) = state.store.get_thumbnail(source).await.map_err(|e| store_unavailable(&e))? else {
            return Ok(None);
        };
        state.store.put_thumbnail(target, bytes).await.map_err(|e| store_unavailable(&e))?;
    }
    let now = Utc::now();
    let mut renditions = record.renditions.clone();
    for (rendition, made) in renditions.iter_mut().zip(&from.renditions) {
        rendition.result.clone_from(&made.result);
    }
    let done = TaskRecord {
        status: TaskStatus::Success,
        finished_at: Some(now),
        result: from.result.clone(),
        renditions,
        deduplicated_from: Some(from.id),
        history: vec![StateChange {
            status: TaskStatus::Success,
            at: now,
            attempt: 0,
            worker: None,
            error: None,
            error_code: None,
        }],
        ..record.clone()
    };
    state.states.create(&done).await?;
    if !envelope.keep_original
        && let Err(e) = state.store.delete_original(envelope.id).await
    {
        tracing::warn!(error = %e, "could not delete a deduplicated upload's original");
    }
    tracing::info!(from = %from.id, "thumbnails copied from an earlier task with the same original and parameters");
    Ok(Some(done))
}
