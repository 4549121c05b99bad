//! The task's wire types: the envelope published to RabbitMQ, the record kept in Redis, and the small value types
//! (id, status, formats, fit) both carry. These exist once, here, so the API and the worker cannot disagree.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Version of [`TaskEnvelope`]'s JSON layout; a worker refuses envelopes of another version.
pub const ENVELOPE_VERSION: u32 = 1;

/// The one task name thumbq runs; a worker refuses envelopes naming another task.
pub const RESIZE_TASK: &str = "thumbq.resize";

/// A task's identity: a random UUID, also the RabbitMQ `message_id` and the stem of the thumbnail's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid, example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
pub struct TaskId(Uuid);

impl TaskId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lower case: the one spelling used in keys, file names and URLs.
        self.0.hyphenated().fmt(f)
    }
}

/// A string that is not a task id in canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a task id: expected a lower-case hyphenated UUID")]
pub struct InvalidTaskId;

impl FromStr for TaskId {
    type Err = InvalidTaskId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical spelling, so one task has exactly one name (and one file).
        let uuid = Uuid::try_parse(s).map_err(|_| InvalidTaskId)?;
        let id = Self(uuid);
        if id.to_string() == s { Ok(id) } else { Err(InvalidTaskId) }
    }
}

/// How the image is fitted into the requested box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to cover the box and centre-crop to exactly width×height.
    #[default]
    Cover,
    /// Scale to fit inside the box, keeping the aspect ratio; one side may be shorter.
    Contain,
    /// Stretch to exactly width×height, ignoring the aspect ratio.
    Fill,
}

/// The format of a thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// PNG, lossless, keeps transparency.
    Png,
    /// JPEG, lossy, no transparency.
    Jpeg,
    /// WebP (lossless), keeps transparency.
    Webp,
}

impl OutputFormat {
    /// Every output format.
    pub const ALL: [Self; 3] = [Self::Png, Self::Jpeg, Self::Webp];

    /// The file extension used in thumbnail names.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    /// The HTTP `Content-Type` of the thumbnail.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// The format a source is converted to when the client names none: itself when it can be written, else PNG.
    pub fn default_for(source: SourceFormat) -> Self {
        match source {
            SourceFormat::Jpeg => Self::Jpeg,
            SourceFormat::Webp => Self::Webp,
            _ => Self::Png,
        }
    }
}

/// The formats thumbq accepts as input, sniffed from the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy or lossless).
    Webp,
    /// GIF; the first frame is used.
    Gif,
    /// BMP.
    Bmp,
    /// TIFF.
    Tiff,
}

/// What a task was asked to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResizeArgs {
    /// Thumbnail width in pixels (1..=2048).
    pub width: u32,
    /// Thumbnail height in pixels (1..=2048).
    pub height: u32,
    /// How the image is fitted into width×height.
    pub fit: Fit,
    /// The thumbnail's format.
    pub format: OutputFormat,
}

/// The message published to RabbitMQ for one attempt of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEnvelope {
    /// Layout version, [`ENVELOPE_VERSION`].
    pub version: u32,
    /// The task's id.
    pub id: TaskId,
    /// The task's name, [`RESIZE_TASK`].
    pub task: String,
    /// What to make.
    pub args: ResizeArgs,
    /// The attempt this message is for, starting at 1.
    pub attempt: u32,
    /// When the task was accepted by the API.
    pub created_at: DateTime<Utc>,
}

impl TaskEnvelope {
    /// The first attempt's envelope of a new resize task.
    pub fn new(id: TaskId, args: ResizeArgs, created_at: DateTime<Utc>) -> Self {
        Self { version: ENVELOPE_VERSION, id, task: RESIZE_TASK.to_owned(), args, attempt: 1, created_at }
    }

    /// The envelope of the next attempt.
    pub fn next_attempt(&self) -> Self {
        Self { attempt: self.attempt + 1, ..self.clone() }
    }

    /// The thumbnail this task writes.
    pub fn thumbnail_name(&self) -> ThumbnailName {
        ThumbnailName { id: self.id, format: self.args.format }
    }

    /// Serialises the envelope to its JSON message body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TaskEnvelope always serialises")
    }

    /// Parses a message body, refusing other envelope versions and other task names.
    pub fn from_json(body: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(body).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.version));
        }
        if envelope.task != RESIZE_TASK {
            return Err(EnvelopeError::UnknownTask(envelope.task));
        }
        Ok(envelope)
    }
}

/// Why a message body is not a task this worker can run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON, or JSON of another shape.
    #[error("malformed task message: {0}")]
    Malformed(String),
    /// An envelope layout this worker does not know.
    #[error("unsupported envelope version {0}")]
    Version(u32),
    /// A task name this worker does not run.
    #[error("unknown task name {0:?}")]
    UnknownTask(String),
}

/// A thumbnail's public name, `<uuid>.<ext>`; parsing it is the only way a request names a stored file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThumbnailName {
    /// The task that makes it.
    pub id: TaskId,
    /// Its format, which gives the extension.
    pub format: OutputFormat,
}

impl fmt::Display for ThumbnailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.format.extension())
    }
}

impl FromStr for ThumbnailName {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (stem, ext) = s.split_once('.').ok_or(())?;
        let id = stem.parse().map_err(|_| ())?;
        let format = OutputFormat::ALL.into_iter().find(|f| f.extension() == ext).ok_or(())?;
        Ok(Self { id, format })
    }
}

/// A task's lifecycle state, as Celery names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    /// Accepted and queued; no worker has started it.
    Pending,
    /// A worker is making the thumbnail.
    Started,
    /// An attempt failed transiently; another is scheduled.
    Retry,
    /// The thumbnail is stored and can be downloaded.
    Success,
    /// The task ended without a thumbnail.
    Failure,
}

impl TaskStatus {
    /// Whether the task can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failure)
    }

    /// Order within one attempt; a transition may only keep or raise `(attempt, rank)`.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Started => 1,
            Self::Retry => 2,
            Self::Success | Self::Failure => 3,
        }
    }

    /// Whether a record in `self` at attempt `current` may move to `next` at attempt `attempt`. Terminal states
    /// never change, and nothing goes back: a late STARTED cannot overwrite RETRY of the same attempt, nor
    /// anything of a later attempt.
    pub fn may_become(self, current: u32, next: Self, attempt: u32) -> bool {
        !self.is_terminal() && (attempt, next.rank()) >= (current, self.rank())
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "PENDING",
            Self::Started => "STARTED",
            Self::Retry => "RETRY",
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
        })
    }
}

impl FromStr for TaskStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "PENDING" => Self::Pending,
            "STARTED" => Self::Started,
            "RETRY" => Self::Retry,
            "SUCCESS" => Self::Success,
            "FAILURE" => Self::Failure,
            other => return Err(format!("unknown task status {other:?}")),
        })
    }
}

/// Why a task failed, which decides the HTTP status of its thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The image could not be processed (corrupt, truncated, unsupported): answered 422.
    InvalidImage,
    /// Retries ran out on an internal fault (storage, Redis): answered 500.
    Internal,
}

impl FailureKind {
    /// The snake-case name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidImage => "invalid_image",
            Self::Internal => "internal",
        }
    }
}

/// Format, size and length of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageInfo {
    /// Format name (`jpeg`, `png`, `webp`, `gif`, `bmp`, `tiff`).
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
    /// The latest error, for RETRY and FAILURE.
    pub error: Option<String>,
    /// What kind of failure ended the task, for FAILURE.
    pub error_kind: Option<FailureKind>,
    /// The uploaded image.
    pub source: Option<ImageInfo>,
    /// The thumbnail, once SUCCESS.
    pub result: Option<ImageInfo>,
}

impl TaskRecord {
    /// The PENDING record of a task the API has just accepted.
    pub fn pending(envelope: &TaskEnvelope, source: Option<ImageInfo>) -> Self {
        Self {
            id: envelope.id,
            name: envelope.thumbnail_name().to_string(),
            task: envelope.task.clone(),
            status: TaskStatus::Pending,
            attempts: 0,
            args: envelope.args,
            created_at: envelope.created_at,
            started_at: None,
            finished_at: None,
            next_retry_at: None,
            worker: None,
            error: None,
            error_kind: None,
            source,
            result: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ResizeArgs {
        ResizeArgs { width: 100, height: 80, fit: Fit::Contain, format: OutputFormat::Webp }
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let envelope = TaskEnvelope::new(TaskId::new(), args(), Utc::now()).next_attempt();
        let parsed = TaskEnvelope::from_json(&envelope.to_json()).unwrap();
        assert_eq!(parsed, envelope);
        assert_eq!(parsed.attempt, 2);
    }

    #[test]
    fn envelope_refuses_garbage_other_versions_and_unknown_tasks() {
        assert!(matches!(TaskEnvelope::from_json(b"\xff\x00garbage"), Err(EnvelopeError::Malformed(_))));
        let mut envelope = TaskEnvelope::new(TaskId::new(), args(), Utc::now());
        envelope.version = 2;
        assert_eq!(TaskEnvelope::from_json(&envelope.to_json()), Err(EnvelopeError::Version(2)));
        envelope.version = ENVELOPE_VERSION;
        envelope.task = "celery.backend_cleanup".into();
        assert!(matches!(TaskEnvelope::from_json(&envelope.to_json()), Err(EnvelopeError::UnknownTask(_))));
    }

    #[test]
    fn thumbnail_names_parse_only_in_canonical_form() {
        let id = TaskId::new();
        let name = ThumbnailName { id, format: OutputFormat::Jpeg };
        assert_eq!(name.to_string().parse::<ThumbnailName>(), Ok(name));
        for bad in [
            "../../etc/passwd".to_owned(),
            format!("{id}"),
            format!("{id}.gif"),
            format!("{id}.jpg.png"),
            format!("{}.png", id.to_string().to_uppercase()),
            format!("{}.png", id.to_string().replace('-', "")),
            format!("../{id}.png"),
        ] {
            assert!(bad.parse::<ThumbnailName>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn status_spelling_round_trips() {
        use TaskStatus::*;
        for status in [Pending, Started, Retry, Success, Failure] {
            assert_eq!(status.to_string().parse::<TaskStatus>(), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{status}\""));
        }
    }

    #[test]
    fn state_machine_moves_forward_only() {
        use TaskStatus::*;
        assert!(Pending.may_become(0, Started, 1));
        assert!(Started.may_become(1, Started, 1), "a redelivered attempt may start again");
        assert!(Started.may_become(1, Success, 1));
        assert!(Started.may_become(1, Retry, 1));
        assert!(Retry.may_become(1, Started, 2));
        assert!(!Retry.may_become(1, Started, 1), "a late STARTED must not overwrite RETRY");
        assert!(!Started.may_become(2, Retry, 1), "an older attempt must not overwrite a newer one");
        for terminal in [Success, Failure] {
            for next in [Pending, Started, Retry, Success, Failure] {
                assert!(!terminal.may_become(1, next, 9), "{terminal} became {next}");
            }
        }
    }
}
