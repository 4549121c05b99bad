//! Completion webhooks: when a task with a `callback_url` ends (SUCCESS, FAILURE or REVOKED), a worker POSTs its
//! record there (when a job with one ends, the job), signed ([`signature`]), to an address the guard allows ([`guard`]). Each delivery is a message of
//! its own lane of queues (`<queue>.webhooks`, its delay queues, its dead letters), so a slow receiver holds up
//! other webhooks at most, never thumbnails.
//!
//! Each event has its own `Idempotency-Key` ([`idempotency_key`]): retries of one delivery share it, so a receiver
//! can drop duplicates, while the events of a replayed task (`task.failed`, then `task.succeeded`) differ.

pub mod signature;

use serde::{Deserialize, Serialize};

use crate::{
    job::JobId,
    state_store::requeue,
    task::{TaskId, TaskRecord},
};

/// The `Idempotency-Key` of a delivery of `record` announcing `event`: `<task id>:<event>:<generation>`, where
/// the generation counts the task's replays ([`requeue::replays`]). Derived from the record the attempt sends, so
/// every retry of one event sends the same key; a task ends once per generation, so no two events share one.
pub fn idempotency_key(record: &TaskRecord, event: &str) -> String {
    format!("{}:{event}:{}", record.id, requeue::replays(record))
}

/// Version of [`WebhookMessage`]'s JSON layout.
pub const WEBHOOK_VERSION: u32 = 1;

/// One delivery attempt of one task's (or one job's) webhook, as queued. The body sent is the task's record (the
/// job) as it is when the attempt runs, so a late attempt carries the latest state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// Layout version, [`WEBHOOK_VERSION`].
    pub version: u32,
    /// The task whose record is sent; absent for a job's webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<TaskId>,
    /// The job that is sent, for a job's webhook (`callback_url` on `POST /jobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
    /// Where to POST it (checked by the guard at upload).
    pub url: String,
    /// The attempt this message is for, starting at 1.
    pub attempt: u32,
}

impl WebhookMessage {
    /// The first attempt for task `id`.
    pub fn new(id: TaskId, url: String) -> Self {
        Self { version: WEBHOOK_VERSION, id: Some(id), job: None, url, attempt: 1 }
    }

    /// The first attempt for job `job`, once it has ended.
    pub fn for_job(job: JobId, url: String) -> Self {
        Self { version: WEBHOOK_VERSION, id: None, job: Some(job), url, attempt: 1 }
    }

    /// What it is about, for its `message_id` and logs: the task's id, or `job:<id>`.
    pub fn subject(&self) -> String {
        match (self.id, self.job) {
            (Some(id), _) => id.to_string(),
            (None, Some(job)) => format!("job:{job}"),
            (None, None) => String::new(),
        }
    }

    /// The next attempt's message.
    pub fn next_attempt(&self) -> Self {
        Self { attempt: self.attempt + 1, ..self.clone() }
    }

    /// The JSON message body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a WebhookMessage always serialises")
    }

    /// Parses a message body, refusing other versions.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let message: Self = serde_json::from_slice(body).map_err(|e| format!("malformed webhook message: {e}"))?;
        if message.version != WEBHOOK_VERSION {
            return Err(format!("unsupported webhook message version {}", message.version));
        }
        if message.id.is_none() && message.job.is_none() {
            return Err("a webhook message names neither a task nor a job".into());
        }
        Ok(message)
    }
}
