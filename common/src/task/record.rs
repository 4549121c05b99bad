//! Everything known about a task, as Redis keeps it and `GET /tasks/{id}` shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Fit, Import, Rendition, ResizeArgs, TaskEnvelope, TaskErrorCode, TaskId, TaskStatus, ThumbnailName, Variant,
};

/// Why a task failed, coarsely, which decides the HTTP status of its thumbnail; derived from its
/// `TaskErrorCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The image could not be processed (corrupt, truncated, unsupported): answered 422.
    InvalidImage,
    /// Retries ran out on an internal fault (storage, Redis): answered 500.
    Internal,
    /// The task ran over the worker's time limit (`THUMBQ_TASK_TIME_LIMIT_SECS`); not retried: answered 422.
    TimeLimit,
    /// An import's source could not be read (refused, missing, too large, its server failed): answered 422.
    Source,
}

impl FailureKind {
    /// The snake-case name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidImage => "invalid_image",
            Self::Internal => "internal",
            Self::TimeLimit => "time_limit",
            Self::Source => "source",
        }
    }
}

/// Format, size and length of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageInfo {
    /// Format name, as [`SourceFormat`](super::SourceFormat) and [`OutputFormat`](super::OutputFormat) spell it.
    #[schema(example = "jpeg")]
    pub format: String,
    /// Width in pixels.
    #[schema(example = 1920)]
    pub width: u32,
    /// Height in pixels.
    #[schema(example = 1080)]
    pub height: u32,
    /// Length of the encoded file in bytes.
    #[schema(example = 245_760)]
    pub bytes: u64,
    /// Of a finished thumbnail: its [ThumbHash](https://evanw.github.io/thumbhash/), base64, about 30 bytes: a
    /// front-end decodes it into a blurred preview to paint while the thumbnail loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1QcSHQRnh493V4dIh4eXh1h4kJUI")]
    pub thumbhash: Option<String>,
    /// Of an animated thumbnail (`animated=true` on an animated source): its frames; absent for a still image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 24)]
    pub frames: Option<u32>,
}

/// Where a task's completion webhook stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Queued or being retried.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Attempts ran out, or the target was refused: the message is with the webhook dead letters.
    Failed,
}

/// One delivery attempt of a webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttempt {
    /// 1 for the first.
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 200)]
    pub status: Option<u16>,
    /// Why it did not count as delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub ms: u64,
}

/// A task's completion webhook: where it goes and every attempt so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookLog {
    /// Where it stands.
    pub state: WebhookState,
    /// Every attempt, oldest first.
    pub attempts: Vec<WebhookAttempt>,
}

/// One state a task entered, as its record's `history` lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StateChange {
    /// The state entered.
    pub status: TaskStatus,
    /// When (Redis's clock, millisecond precision).
    pub at: DateTime<Utc>,
    /// The attempt it belongs to (0 before the first).
    pub attempt: u32,
    /// The worker, for STARTED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "host-a:4242")]
    pub worker: Option<String>,
    /// The error, for RETRY and FAILURE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's stable code, beside `error` (absent for changes recorded before codes existed).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "TaskErrorCode::lenient")]
    pub error_code: Option<TaskErrorCode>,
}

/// What an operator did to a task from the dashboard or the API, as its record's `actions` lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperatorAction {
    /// When.
    pub at: DateTime<Utc>,
    /// What: `replayed` (a dead letter sent back to the work queue), `purged` (its dead letter discarded),
    /// `cancelled`.
    #[schema(example = "replayed")]
    pub action: String,
    /// The API key that did it; none when keys are off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "ops")]
    pub by: Option<String>,
}

/// Everything known about a task, as `GET /tasks/{id}` shows it (like Celery's `AsyncResult`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskRecord {
    /// The task's id.
    pub id: TaskId,
    /// The thumbnail's name, `<uuid>.<ext>`.
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub name: String,
    /// The task's name.
    #[schema(example = "thumbq.resize")]
    pub task: String,
    /// Current state.
    pub status: TaskStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// What was asked for.
    pub args: ResizeArgs,
    /// When the API accepted the upload.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the task reached SUCCESS or FAILURE.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the next attempt runs, while in RETRY.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The worker that ran the latest attempt.
    #[schema(example = "host-a:4242")]
    pub worker: Option<String>,
    /// The latest error, for RETRY and FAILURE: a message for people, whose wording may change.
    pub error: Option<String>,
    /// The latest error's stable code, for programs to branch on; absent when `error` is.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "TaskErrorCode::lenient")]
    pub error_code: Option<TaskErrorCode>,
    /// What kind of failure ended the task, for FAILURE: the coarse class of `error_code`.
    pub error_kind: Option<FailureKind>,
    /// The uploaded image.
    pub source: Option<ImageInfo>,
    /// The thumbnail (with renditions, the first rendition), once SUCCESS.
    pub result: Option<ImageInfo>,
    /// The renditions, each with its file and (once SUCCESS) its result; empty for a task of one thumbnail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<Rendition>,
    /// Where the record is POSTed when the task ends (SUCCESS, FAILURE or REVOKED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://hooks.example.com/thumbq")]
    pub callback_url: Option<String>,
    /// The completion webhook's deliveries, once one was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookLog>,
    /// Every state the task entered, oldest first (the latest 50).
    #[serde(default)]
    pub history: Vec<StateChange>,
    /// What operators did to it, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<OperatorAction>,
    /// The name of the API key that uploaded it; absent when keys are off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "mobile-app")]
    pub owner: Option<String>,
    /// Absolute URL of the thumbnail (signed when signed URLs are on); added by the API to its answers, not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "http://127.0.0.1:8000/thumbnails/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub url: Option<String>,
    /// With `dedupe=true`: the earlier task with the same original and parameters whose thumbnails this one
    /// copied, without decoding again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<TaskId>,
    /// Of an import (`POST /thumbnails` with a JSON body): the URL or import-store key its original was read from.
    /// `source` is filled in once a worker has read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<Import>,
    /// Of a job's item: the job (`GET /jobs/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::job::JobId>,
    /// The task whose kept original this one was made from (`POST /tasks/{id}/renditions`, a `rerender` job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendition_of: Option<TaskId>,
    /// With `format=auto`: each format the thumbnail is made in, with its own URL (`url` above serves the best the
    /// client accepts); added by the API, not stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

impl TaskRecord {
    /// The SUCCESS record rebuilt for a stored thumbnail whose record was lost (a Redis failover before a replica
    /// had it, say): its arguments are the thumbnail's own size and format, its times the time of the rebuild.
    pub fn recovered(name: &ThumbnailName, result: ImageInfo) -> Self {
        let args = ResizeArgs::new(result.width, result.height, Fit::Fill, name.format);
        let now = to_the_millisecond(Utc::now());
        let envelope = TaskEnvelope::new(name.id, args, now);
        // Its history holds what is known: it ended in SUCCESS; the `rebuilt` action says why nothing more is.
        let history = vec![StateChange {
            status: TaskStatus::Success,
            at: now,
            attempt: 1,
            worker: None,
            error: None,
            error_code: None,
        }];
        let actions = vec![OperatorAction { at: now, action: "rebuilt".into(), by: None }];
        Self {
            name: name.to_string(),
            status: TaskStatus::Success,
            attempts: 1,
            finished_at: Some(now),
            result: Some(result),
            history,
            actions,
            ..Self::pending(&envelope, None)
        }
    }

    /// Whether `name` is one of the files this task makes.
    pub fn has_file(&self, name: &ThumbnailName) -> bool {
        name.id == self.id && self.files().contains(name)
    }

    /// Every file this task makes (or made): its thumbnail or each rendition's, with `format=auto` in each variant.
    pub fn files(&self) -> Vec<ThumbnailName> {
        let mut outputs: Vec<(ThumbnailName, ResizeArgs)> =
            self.renditions.iter().filter_map(|r| Some((r.file.parse().ok()?, r.args))).collect();
        if outputs.is_empty() {
            outputs.extend(self.name.parse().ok().map(|name| (name, self.args)));
        }
        let variants = |(name, args): (ThumbnailName, ResizeArgs)| {
            args.variants().into_iter().map(move |args| ThumbnailName { format: args.format, ..name.clone() })
        };
        outputs.into_iter().flat_map(variants).collect()
    }

    /// The PENDING record of a task the API has just accepted.
    pub fn pending(envelope: &TaskEnvelope, source: Option<ImageInfo>) -> Self {
        // Redis keeps times to the millisecond: the record is made as it will read back.
        let created_at =
            DateTime::from_timestamp_millis(envelope.created_at.timestamp_millis()).unwrap_or(envelope.created_at);
        Self {
            id: envelope.id,
            name: envelope.thumbnail_name().to_string(),
            task: envelope.task.clone(),
            status: TaskStatus::Pending,
            attempts: 0,
            args: envelope.args,
            created_at,
            started_at: None,
            finished_at: None,
            next_retry_at: None,
            worker: None,
            error: None,
            error_code: None,
            error_kind: None,
            source,
            result: None,
            variants: Vec::new(),
            deduplicated_from: None,
            import: envelope.import.clone(),
            job: envelope.job,
            rendition_of: envelope.source_task,
            renditions: envelope.renditions.clone(),
            callback_url: envelope.callback_url.clone(),
            webhook: None,
            history: vec![StateChange {
                status: TaskStatus::Pending,
                at: created_at,
                attempt: 0,
                worker: None,
                error: None,
                error_code: None,
            }],
            actions: Vec::new(),
            owner: None,
            url: None,
        }
    }
}

/// `at` to the millisecond, as Redis keeps a record's times.
fn to_the_millisecond(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}
