//! One delivery, from message to ack. The order is the delivery guarantee: mark STARTED, make the thumbnail, write it
//! atomically, record SUCCESS, delete the original, and only then ack. A crash anywhere before the ack leaves the
//! message with RabbitMQ, which redelivers it; every step is idempotent, so the redelivery ends the same way.
//!
//! A failed attempt is settled before its message is acked: the next attempt is published (with a confirm) to a
//! delay queue, or FAILURE is recorded (and, when retries ran out, the message is dead-lettered).

use std::sync::{Arc, atomic::Ordering};

use chrono::Utc;
use lapin::message::Delivery;
use thumbq_common::{
    broker::{BrokerError, Publisher},
    job::JobStatus,
    metrics,
    state_store::Update,
    task::{ResizeArgs, TaskEnvelope, TaskErrorCode, TaskId, TaskStatus, ThumbnailName},
};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, error, info, info_span, warn};

use crate::{
    error::TaskError,
    import,
    pipeline::{self, Deadline, Limits, PipelineError},
    retry::{self, Decision},
    settle::Settlement,
    state::WorkerState,
};

/// How a delivery ended, for logs and tests.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The thumbnail is stored and SUCCESS recorded.
    Done,
    /// Nothing to do: the task already ended or moved past this attempt, or its record is gone. `ended`: it has
    /// ended (SUCCESS, FAILURE, REVOKED), so its webhook is queued again: the delivery that ended it may have died
    /// before queuing it (receivers deduplicate by the task id).
    Skipped {
        /// Whether the task has ended.
        ended: bool,
    },
}

/// Handles one delivery to the end, and says how to settle it: acked, or back to the queue when it could not be
/// settled. The caller, which owns the channel, applies the answer.
pub async fn process(ctx: Arc<WorkerState>, publisher: Publisher, delivery: &Delivery) -> Settlement {
    let envelope = match TaskEnvelope::from_json(&delivery.data) {
        Ok(envelope) => envelope,
        Err(e) => return dead_letter_poison(&ctx, &publisher, delivery, &e.to_string()).await,
    };
    let span = info_span!("task", task_id = %envelope.id, attempt = envelope.attempt, trace_id = tracing::field::Empty);
    // The upload's trace (or the failed attempt's, for a retry) continues here.
    thumbq_common::telemetry::continue_from_amqp(&span, delivery.properties.headers().as_ref());
    let (queue, worker) = (ctx.settings.amqp.queue.clone(), ctx.settings.worker.id.clone());
    let waited = (Utc::now() - envelope.created_at).to_std().unwrap_or_default();
    metrics::task_started(&queue, &worker, waited);
    ctx.counters.in_flight.fetch_add(1, Ordering::Relaxed);
    let started = std::time::Instant::now();
    async move {
        let result = execute(&ctx, &envelope).await;
        let settled = match result {
            Ok(outcome) => {
                if outcome == Outcome::Done {
                    metrics::task_finished(&queue, "success");
                    ctx.counters.done.fetch_add(1, Ordering::Relaxed);
                }
                info!(?outcome, "task handled");
                match outcome {
                    Outcome::Done | Outcome::Skipped { ended: true } => {
                        publisher.queue_webhook_for(&envelope).instrument(info_span!("webhook")).await
                    }
                    Outcome::Skipped { ended: false } => Ok(()),
                }
            }
            Err(error) => settle_failure(&ctx, &publisher, delivery, &envelope, &error).await,
        };
        let settlement = match settled {
            Ok(()) => Settlement::Ack,
            Err(e) => {
                // Could not hand the task on: leave it with RabbitMQ, which delivers it again.
                error!(error = %e, "task could not be settled; requeueing");
                Settlement::Requeue
            }
        };
        metrics::task_done(&queue, &worker, started.elapsed());
        ctx.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        settlement
    }
    .instrument(span)
    .await
}

/// One attempt: STARTED, thumbnail, SUCCESS.
async fn execute(ctx: &WorkerState, envelope: &TaskEnvelope) -> Result<Outcome, TaskError> {
    let id = envelope.id;
    // A cancelled job's items already in the queue never start: each is REVOKED as a worker meets it.
    if let Some(job) = envelope.job
        && ctx.states.job_status(job).await? == Some(JobStatus::Cancelled)
    {
        if ctx.states.revoke(id).await? == Update::Applied {
            info!(%job, "the item's job was cancelled; not starting it");
        }
        return Ok(Outcome::Skipped { ended: true });
    }
    match ctx.states.start(id, envelope.attempt, &ctx.settings.worker.id).await? {
        Update::Applied => {}
        Update::Refused(status) => {
            if status == TaskStatus::Revoked {
                info!("task was cancelled; acknowledging it without work");
            } else {
                info!(%status, "task is already past this attempt; skipping the duplicate");
            }
            if matches!(status, TaskStatus::Success | TaskStatus::Revoked) {
                // The delivery that succeeded may have died before deleting the original (or the API's cancel
                // before deleting it): finish that clean-up. The task has ended either way; a clean-up failure
                // must not turn it into a retry or a dead letter.
                delete_original(ctx, envelope.original_to_delete(status == TaskStatus::Success)).await;
            }
            return Ok(Outcome::Skipped { ended: status.is_terminal() });
        }
        Update::Missing => {
            warn!("task has no record (withdrawn by the API, or expired); dropping it");
            return Ok(Outcome::Skipped { ended: false });
        }
    }
    // Its own original, or for renditions made later the kept original of the task they come from; an import's is
    // read from its source by its first attempt (what it is then goes into the record with the result).
    let fetch = async {
        Ok(match (ctx.store.get_original(envelope.original()).await?, &envelope.import) {
            (Some(original), None) => (original, None),
            // Read by an earlier attempt, which did not get as far as recording it.
            (Some(original), Some(_)) => import::describe(ctx, original).await.map(|(o, info)| (o, Some(info)))?,
            (None, Some(import)) => import::fetch_original(ctx, id, import).await.map(|(o, info)| (o, Some(info)))?,
            (None, None) => return Err(TaskError::MissingOriginal),
        })
    };
    let (original, imported) = fetch.instrument(info_span!("fetch_original")).await?;
    let (names, outputs): (Vec<ThumbnailName>, Vec<ResizeArgs>) = envelope.outputs().into_iter().unzip();
    let limits = Limits {
        max_pixels: ctx.settings.limits.max_pixels,
        max_animation_pixels: ctx.settings.limits.max_animation_pixels,
        decoder_memory_mib: 0,
        deadline: None,
    };
    let memory = admit(ctx, &original, &outputs, &limits).await?;
    // The admitted share is also libjpeg-turbo's own cap: a file the estimate got wrong fails, not the worker.
    // The time limit counts from here: waiting for memory is not work.
    let limits = Limits {
        decoder_memory_mib: memory.num_permits() as u32,
        deadline: Some(Deadline::after(ctx.settings.worker.task_time_limit)),
        ..limits
    };
    // Off the runtime's threads the pipeline's spans (decode, resize, encode) need the task's span entered.
    let span = tracing::Span::current();
    let make = move || span.in_scope(|| pipeline::make_thumbnails(&original, &outputs, limits));
    // A job's item on the bulk pool's nicer threads, so that an upload beside it takes the cores it needs.
    let thumbnails = match envelope.job {
        Some(_) => ctx.bulk.run(make).await.map_err(TaskError::Crashed)??,
        None => tokio::task::spawn_blocking(make).await.map_err(|e| TaskError::Crashed(e.to_string()))??,
    };
    // With renditions, the record lists each one's result; the first is also the task's own result.
    let mut renditions = envelope.renditions.clone();
    // (With `format=auto` each has its variants beside it: the result is its fallback's, the file it names.)
    for rendition in &mut renditions {
        let made = names.iter().zip(&thumbnails).find(|(name, _)| name.to_string() == rendition.file);
        rendition.result = made.map(|(_, thumbnail)| thumbnail.info.clone());
    }
    let result = thumbnails[0].info.clone();
    let stores = names.iter().zip(thumbnails).map(|(name, thumbnail)| ctx.store.put_thumbnail(name, thumbnail.bytes));
    futures_util::future::try_join_all(stores).instrument(info_span!("store")).await?;
    let update = ctx
        .states
        .succeed(id, envelope.attempt, &result, &renditions, imported.as_ref())
        .instrument(info_span!("record"))
        .await?;
    // Kept for renditions later when the upload asked (`THUMBQ_KEEP_ORIGINALS`), never when the task was cancelled.
    let succeeded = matches!(update, Update::Applied | Update::Refused(TaskStatus::Success));
    let outcome = match update {
        Update::Applied => Outcome::Done,
        // Cancelled or deleted while it ran: the thumbnail just written must not outlive the task. (Any other
        // refusal is a later delivery of the same task, which writes the same name: its file stays.)
        update @ (Update::Refused(TaskStatus::Revoked) | Update::Missing) => {
            info!(?update, "the task was cancelled or deleted while it ran; removing its thumbnails");
            for name in &names {
                if let Err(e) = ctx.store.delete_thumbnail(name).await {
                    warn!(error = %e, "could not remove a thumbnail of a cancelled task");
                }
            }
            Outcome::Skipped { ended: update != Update::Missing }
        }
        Update::Refused(status) => {
            info!(%status, "another delivery of this task ended it first");
            Outcome::Skipped { ended: status.is_terminal() }
        }
    };
    delete_original(ctx, envelope.original_to_delete(succeeded)).await;
    Ok(outcome)
}

/// Waits until the worker's memory budget has room for this task's estimated peak, and holds that share until the
/// returned permit is dropped. A task that alone needs more than the whole budget fails for good.
async fn admit(
    ctx: &WorkerState,
    original: &[u8],
    outputs: &[ResizeArgs],
    limits: &Limits,
) -> Result<OwnedSemaphorePermit, TaskError> {
    let peak = pipeline::estimate_peak(original, outputs, limits)?;
    let (needed_mib, budget_mib) = (peak.div_ceil(1 << 20), u64::from(ctx.settings.worker.memory_budget_mb));
    let permits = u32::try_from(needed_mib).ok().filter(|n| u64::from(*n) <= budget_mib);
    let Some(permits) = permits else {
        return Err(PipelineError::OverBudget { needed_mib, budget_mib }.into());
    };
    tracing::debug!(needed_mib, available = ctx.memory.available_permits(), "waiting for memory");
    ctx.memory.clone().acquire_many_owned(permits).await.map_err(|e| TaskError::Crashed(e.to_string()))
}

/// Deletes a finished task's original, if it has one to delete; a failure is logged, never a task failure (the
/// task has ended).
async fn delete_original(ctx: &WorkerState, id: Option<TaskId>) {
    let Some(id) = id else { return };
    if let Err(e) = ctx.store.delete_original(id).await {
        warn!(error = %e, "could not delete the original");
    }
}

/// Settles a failed attempt so its message can be acked. An `Err` means the task could not be handed on.
async fn settle_failure(
    ctx: &WorkerState,
    publisher: &Publisher,
    delivery: &Delivery,
    envelope: &TaskEnvelope,
    error: &TaskError,
) -> Result<(), BrokerError> {
    // The record (and the dead letter) gets the safe message; the cause, which may name server paths, goes to the
    // log only, in the task's span.
    let (id, attempt, message) = (envelope.id, envelope.attempt, error.public_message());
    if error.is_redis_outage() {
        // The task cannot be recorded, so it must not end: park it in the shortest delay queue, same attempt.
        // The outage itself is logged once by the state store.
        tracing::debug!(error = %error, "redis unavailable; deferring the task");
        return defer(publisher, envelope).await;
    }
    match retry::decide(error, attempt, &ctx.settings.retry) {
        Decision::Retry(delay) => {
            warn!(error = %error, delay_ms = delay.as_millis() as u64, "attempt failed; retrying");
            // Publish before recording RETRY: the record may then lag, but the task can never be stuck in RETRY
            // with no message behind it.
            publisher.publish_delayed(&envelope.next_attempt(), delay).await?;
            metrics::task_retried(&ctx.settings.amqp.queue);
            let next_at = Utc::now() + delay;
            if let Err(e) = ctx.states.retry(id, attempt, &message, error.code(), next_at).await {
                warn!(error = %e, "could not record RETRY; the next attempt will update the record");
            }
            Ok(())
        }
        Decision::Fail { exhausted } => {
            match ctx.states.fail(id, attempt, &message, error.code()).await {
                Ok(update) => {
                    if update == Update::Applied {
                        metrics::task_finished(&ctx.settings.amqp.queue, "failure");
                        ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
                        publisher.queue_webhook_for(envelope).await?;
                    }
                    warn!(error = %error, exhausted, "task failed");
                }
                Err(e) => {
                    warn!(error = %e, "could not record FAILURE; deferring the task");
                    return defer(publisher, envelope).await;
                }
            }
            if exhausted && envelope.job.is_none() {
                // Dead-lettered: the original stays for `replay-dead-letters` (the sweep removes it once the record
                // has expired). A job's item is not: it is a failure of its job, which `retry-failed` makes again
                // (reading its source again), so a bulk dead-letter queue never fills up unseen.
                let (id, code) = (id.to_string(), error.code());
                publisher.publish_dead(&delivery.data, Some(&id), "retries_exhausted", &message, code).await?;
                metrics::dead_lettered(&ctx.settings.amqp.queue, "retries_exhausted");
            } else {
                // A permanent failure: the same input fails the same way, so nothing will ever read the original.
                // (A job item's, retried or not, is read again from its source by `retry-failed`.)
                delete_original(ctx, envelope.original_to_delete(false)).await;
            }
            Ok(())
        }
    }
}

/// Parks the same attempt in the shortest delay queue: for when the task cannot be recorded, which must not use up
/// an attempt nor end the task.
async fn defer(publisher: &Publisher, envelope: &TaskEnvelope) -> Result<(), BrokerError> {
    let delay = publisher.topology().delays.first().map(|q| q.delay).unwrap_or_default();
    publisher.publish_delayed(envelope, delay).await
}

/// A message that is not a task: to the dead-letter queue with the reason, or, failing that, rejected so that
/// RabbitMQ dead-letters it itself. If it names a task thumbq knows (another envelope version, say), that task
/// becomes FAILURE, so it is not left PENDING forever.
async fn dead_letter_poison(ctx: &WorkerState, publisher: &Publisher, delivery: &Delivery, reason: &str) -> Settlement {
    let message_id = delivery.properties.message_id().as_ref().map(|id| id.to_string());
    warn!(error = reason, message_id, "poison message; dead-lettering it");
    let code = TaskErrorCode::InvalidMessage;
    if let Err(e) = publisher.publish_dead(&delivery.data, message_id.as_deref(), "poison", reason, code).await {
        error!(error = %e, "could not publish the poison message to the dead-letter queue; rejecting it");
        return Settlement::Reject;
    }
    metrics::dead_lettered(&ctx.settings.amqp.queue, "poison");
    if let Some(id) = poison_task_id(message_id.as_deref(), &delivery.data) {
        let failed = async {
            let Some(record) = ctx.states.get(id).await? else { return Ok(()) };
            let error = format!("the task message cannot be run: {reason}");
            ctx.states.fail(id, record.attempts, &error, code).await.map(drop)
        };
        if let Err(e) = failed.await {
            warn!(task_id = %id, error = %e, "could not record FAILURE for a poison message");
        }
    }
    Settlement::Ack
}

/// The task a poison message names, from its `message_id` or an `"id"` field in its JSON body.
fn poison_task_id(message_id: Option<&str>, body: &[u8]) -> Option<TaskId> {
    let from_body = || serde_json::from_slice::<serde_json::Value>(body).ok()?.get("id")?.as_str()?.parse().ok();
    message_id.and_then(|id| id.parse().ok()).or_else(from_body)
}
