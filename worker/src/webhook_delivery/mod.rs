//! Delivering completion webhooks: one message of the webhooks' lane per attempt. The record (a job's webhook: the
//! job) is read when the attempt runs and POSTed as JSON; the outcome is written into its `webhook` log; a failure is retried
//! after the retry tiers' delay until `THUMBQ_WEBHOOK_MAX_ATTEMPTS`, then dead-lettered. Like tasks, the next step
//! is published (with a confirm) before the message is acked, so no webhook is lost between two attempts.

mod sender;

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use lapin::message::Delivery;
use thumbq_common::{
    broker::{BrokerError, Publisher},
    job::{Job, JobId, JobStatus},
    metrics,
    state_store::StateError,
    task::{TaskId, TaskRecord, TaskStatus, WebhookAttempt, WebhookLog, WebhookState},
    webhook::{WebhookMessage, idempotency_key},
};
use tracing::{Instrument, info, info_span, warn};

pub use sender::{DeliveryError, Sender};

use crate::{settle::Settlement, state::WorkerState};

/// Attempts kept in a record's log: the latest ones (a receiver down for a day must not grow the record).
const KEPT_ATTEMPTS: usize = 20;

/// Handles one webhook delivery to the end, and says how to settle it: acked once settled, else requeued. The
/// caller, which owns the channel, applies the answer.
pub async fn deliver(
    ctx: Arc<WorkerState>,
    sender: Arc<Sender>,
    publisher: Publisher,
    delivery: &Delivery,
) -> Settlement {
    let message = match WebhookMessage::from_json(&delivery.data) {
        Ok(message) => message,
        Err(reason) => {
            warn!(error = %reason, "poison webhook message; dropping it");
            return Settlement::Ack;
        }
    };
    let span = info_span!("webhook", task_id = %message.subject(), attempt = message.attempt, trace_id = tracing::field::Empty);
    thumbq_common::telemetry::continue_from_amqp(&span, delivery.properties.headers().as_ref());
    async move {
        match attempt(&ctx, &sender, &publisher, &message).await {
            Ok(()) => Settlement::Ack,
            Err(e) => {
                warn!(error = %e, "webhook attempt could not be settled; requeueing");
                Settlement::Requeue
            }
        }
    }
    .instrument(span)
    .await
}

/// One attempt: read the record, POST it, then record the outcome and queue what comes next.
async fn attempt(
    ctx: &WorkerState,
    sender: &Sender,
    publisher: &Publisher,
    message: &WebhookMessage,
) -> Result<(), BrokerError> {
    let read = match (message.id, message.job) {
        (Some(id), _) => task_body(ctx, id).await,
        (None, Some(job)) => job_body(ctx, job).await,
        (None, None) => Ok(None),
    };
    let (body, event, key, mut log) = match read {
        Ok(Some(read)) => read,
        Ok(None) => {
            info!("the record is gone (erased or expired); nothing to send");
            return Ok(());
        }
        // Redis is down: try again after the shortest delay, without using up an attempt.
        Err(e) => {
            warn!(error = %e, "cannot read the record; deferring the webhook");
            let delay = publisher.topology().delays.first().map(|q| q.delay);
            return publisher.publish_webhook(message, delay).await;
        }
    };
    let started = Instant::now();
    let result = sender.send(&message.url, &key, &event, body).await;
    let queue = &ctx.settings.amqp.queue;
    let max_attempts = ctx.settings.webhook.max_attempts;
    let error = result.as_ref().err().map(ToString::to_string);
    log.state = match &result {
        Ok(status) => {
            info!(status, "webhook delivered");
            metrics::webhook_attempted(queue, "delivered");
            WebhookState::Delivered
        }
        Err(DeliveryError::Refused(reason)) => {
            warn!(%reason, "webhook target refused; dead-lettering");
            publisher.publish_webhook_dead(message, "refused", reason).await?;
            metrics::webhook_attempted(queue, "refused");
            WebhookState::Failed
        }
        Err(e) if message.attempt >= max_attempts => {
            warn!(error = %e, "webhook attempts ran out; dead-lettering");
            publisher.publish_webhook_dead(message, "attempts_exhausted", &e.to_string()).await?;
            metrics::webhook_attempted(queue, "gave_up");
            WebhookState::Failed
        }
        Err(e) => {
            let delay = ctx.settings.retry.delay_after(message.attempt);
            warn!(error = %e, delay_ms = delay.as_millis() as u64, "webhook attempt failed; retrying");
            publisher.publish_webhook(&message.next_attempt(), Some(delay)).await?;
            metrics::webhook_attempted(queue, "retried");
            WebhookState::Pending
        }
    };
    log.attempts.push(WebhookAttempt {
        attempt: message.attempt,
        at: Utc::now(),
        status: result.as_ref().map_or_else(DeliveryError::status, |s| Some(*s)),
        error,
        ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    let excess = log.attempts.len().saturating_sub(KEPT_ATTEMPTS);
    log.attempts.drain(..excess);
    // The log is for people; the delivery itself is settled whether or not it is written.
    let written = match (message.id, message.job) {
        (Some(id), _) => ctx.states.record_webhook(id, &log).await.map(drop),
        (None, Some(job)) => ctx.states.record_job_webhook(job, &log).await,
        (None, None) => Ok(()),
    };
    if let Err(e) = written {
        warn!(error = %e, "could not record the webhook attempt");
    }
    Ok(())
}

/// What a delivery sends: the body, the event, its idempotency key, and the deliveries so far.
type Read = (Vec<u8>, String, String, WebhookLog);

/// A task's webhook: its record as it is now; `None` when the record is gone.
async fn task_body(ctx: &WorkerState, id: TaskId) -> Result<Option<Read>, StateError> {
    let Some(record) = ctx.states.get(id).await? else { return Ok(None) };
    let event = event_name(record.status);
    let key = idempotency_key(&record, event);
    let log = record.webhook.clone().unwrap_or(WebhookLog { state: WebhookState::Pending, attempts: vec![] });
    let body = serde_json::to_vec(&ctx.links.with_urls(TaskRecord { webhook: None, ..record }))
        .expect("a record always serialises");
    Ok(Some((body, event.to_owned(), key, log)))
}

/// A job's webhook, once it has ended: the job as `GET /jobs/{id}` shows it. Its key counts the job's ends, so a
/// job whose failures are retried sends a second event that a receiver does not take for a duplicate.
async fn job_body(ctx: &WorkerState, id: JobId) -> Result<Option<Read>, StateError> {
    let Some(job) = ctx.states.job(id).await? else { return Ok(None) };
    let event = if job.status == JobStatus::Cancelled { "job.cancelled" } else { "job.done" };
    let key = format!("job:{id}:{event}:{}", job.ends);
    let log = job.webhook.clone().unwrap_or(WebhookLog { state: WebhookState::Pending, attempts: vec![] });
    let status_url = Some(format!("{}/jobs/{id}", ctx.settings.http.public_url));
    let body = serde_json::to_vec(&Job { webhook: None, status_url, ..job }).expect("a job always serialises");
    Ok(Some((body, event.to_owned(), key, log)))
}

/// The `Thumbq-Event` header: what happened to the task.
fn event_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Success => "task.succeeded",
        TaskStatus::Failure => "task.failed",
        TaskStatus::Revoked => "task.revoked",
        TaskStatus::Pending | TaskStatus::Started | TaskStatus::Retry => "task.updated",
    }
}
