//! Admitting a task: an upload's original stored as it streams (`queue_upload`), the task recorded PENDING and
//! published (`accept`, which withdraws every step when a later one fails), and the `202` that answers it
//! (`accepted`). Uploads, imports and renditions later all end here.

use futures_util::{StreamExt, TryStreamExt};
use sha2::Digest;
use thumbq_common::task::{TaskEnvelope, TaskRecord, TaskStatus};
use tracing::{Instrument, info, info_span, warn};

use super::{
    Accepted, dedupe,
    params::{Source, UploadParams},
};
use crate::{
    caller::Caller,
    error::{ApiError, store_unavailable},
    idempotency,
    state::AppState,
    upload::{self, Upload},
};

/// Stores the upload's original (feeding `digest` with its bytes, when given), records and publishes its task: the
/// `202`'s body and `Location`.
pub(super) async fn queue_upload(
    state: &AppState,
    caller: &Caller,
    params: &UploadParams,
    mut upload: Upload,
    digest: Option<&idempotency::BodyDigest>,
) -> Result<(Accepted, String), ApiError> {
    let head = upload.head(state.settings.limits.max_pixels).await?;
    let source = Source {
        format: head.probe.format,
        may_have_alpha: thumbq_common::image_probe::may_have_alpha(&head.bytes, head.probe.format),
    };
    let envelope = match params.callback_url(&state.settings.webhook).and_then(|callback_url| {
        Ok(TaskEnvelope {
            callback_url,
            keep_original: params.keep_original.unwrap_or(state.settings.store.keep_originals),
            ..params.envelope(source, &state.settings.presets, state.settings.limits.max_task_work_ms)?
        })
    }) {
        Ok(envelope) => envelope,
        Err(e) => return Err(upload.refuse(e).await),
    };
    if state.store.buffers_originals() {
        upload.reserve_whole().await?;
    }
    let span = info_span!("task", task_id = %envelope.id);
    // The original is written as it arrives: if the client hangs up half-way, the write stops and its temporary
    // file goes with it.
    let (chunks, reservation) = upload.into_chunks(head.bytes);
    // `dedupe=true` compares the original's SHA-256: hashed as it streams, as for an idempotency key.
    let dedupe = params.dedupe.unwrap_or(state.settings.store.dedupe) && envelope.callback_url.is_none();
    let own_digest = idempotency::BodyDigest::default();
    let digest = digest.or(dedupe.then_some(&own_digest));
    let chunks = match digest {
        Some(digest) => {
            let digest = digest.clone();
            chunks.inspect_ok(move |chunk| digest.lock().expect("not poisoned").update(chunk)).boxed()
        }
        None => chunks,
    };
    let length = state
        .store
        .put_original(envelope.id, chunks)
        .instrument(span.clone())
        .await
        .map_err(|e| upload::refusal(e).unwrap_or_else(|e| store_unavailable(&e)))?;
    drop(reservation);
    let record = TaskRecord {
        owner: caller.key.clone(),
        ..TaskRecord::pending(&envelope, Some(head.probe.info(usize::try_from(length).unwrap_or(usize::MAX))))
    };
    let fingerprint = digest.filter(|_| dedupe).map(|digest| dedupe::fingerprint(digest, &envelope));
    if let Some(fingerprint) = &fingerprint
        && let Some(made) = dedupe::copy(state, &envelope, &record, fingerprint).instrument(span.clone()).await?
    {
        let (mut body, location) = accepted(state, &envelope);
        body.status = made.status;
        return Ok((body, location));
    }
    // The rest of the accept sequence runs as its own task: from here on a client that hangs up must not leave
    // half a task behind.
    let owner = record.owner.clone().unwrap_or_default();
    let queued =
        tokio::spawn(accept(state.clone(), envelope.clone(), record, length, caller.quota_bytes).instrument(span))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    queued?;
    if let Some(fingerprint) = &fingerprint
        && let Err(e) = state.states.remember_for_dedupe(&owner, fingerprint, envelope.id).await
    {
        warn!(error = %e, "could not remember the upload for dedupe; later copies will be made again");
    }
    Ok(accepted(state, &envelope))
}

/// The `202` of a queued task: its name, URLs and renditions, and the thumbnail's path for `Location`.
pub(super) fn accepted(state: &AppState, envelope: &TaskEnvelope) -> (Accepted, String) {
    let base = &state.settings.http.public_url;
    let answered = state.with_urls(TaskRecord::pending(envelope, None));
    // With `format=auto` the thumbnail is named without a format: its URL serves the best the client accepts.
    let name = envelope.thumbnail_name();
    let name = if envelope.args.auto { name.negotiated().to_string() } else { name.to_string() };
    let body = Accepted {
        id: envelope.id,
        status: TaskStatus::Pending,
        url: answered.url.unwrap_or_else(|| state.thumbnail_url(&name)),
        status_url: format!("{base}/tasks/{}", envelope.id),
        name,
        variants: answered.variants,
        renditions: answered.renditions,
    };
    // The path (and signature) of the thumbnail's URL.
    let location = body.url.strip_prefix(base.as_str()).unwrap_or(&body.url).to_owned();
    (body, location)
}

/// Records PENDING and publishes the task of a stored original of `length` bytes, undoing the earlier steps (the
/// original included) if a later one fails. With a `quota`, the original's bytes count against the uploading key's
/// storage quota until the task finishes or is deleted.
pub(super) async fn accept(
    state: AppState,
    envelope: TaskEnvelope,
    record: TaskRecord,
    length: u64,
    quota: Option<u64>,
) -> Result<(), ApiError> {
    let id = envelope.id;
    let queued = async {
        if let (Some(owner), Some(quota)) = (record.owner.as_deref(), quota)
            && length > quota
        {
            // Waiting would never help: this one upload is larger than the whole quota.
            return Err(ApiError::TooLarge(format!(
                "the upload is {length} bytes, larger than the whole storage quota of the key {owner:?} ({quota} bytes)"
            )));
        }
        if let (Some(owner), Some(quota)) = (record.owner.as_deref(), quota)
            && let Err(used) = state.states.reserve_quota(owner, id, length, quota).await?
        {
            return Err(ApiError::OverQuota(format!(
                "the key {owner:?} has {used} bytes of originals in tasks not yet finished; {length} more would \
                 pass its quota of {quota} bytes: retry when some have finished"
            )));
        }
        state.states.create(&record).await?;
        state.publisher.get().await?.publish_task(&envelope).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = queued.await {
        // Withdraw: the client is told why and must find nothing half-done (the quota's share is released with the
        // record). A worker that still receives the message (confirm lost, message kept) finds no record and drops
        // it.
        if let Err(cleanup) = state.states.delete(&record).await {
            warn!(error = %cleanup, "could not withdraw the task record");
        }
        if let Err(cleanup) = state.store.delete_original(id).await {
            warn!(error = %cleanup, "could not withdraw the original");
        }
        return Err(e);
    }
    thumbq_common::metrics::task_published(&state.settings.amqp.queue);
    info!(width = envelope.args.width, height = envelope.args.height, "task queued");
    Ok(())
}
