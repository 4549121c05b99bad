//! The task's wire types: the envelope published to RabbitMQ, the record kept in Redis, and the small value types
//! (id, status, formats, fit) both carry. These exist once, here, so the API and the worker cannot disagree.

mod accepted;
mod envelope;
mod error_code;
mod format;
mod id;
mod import;
mod record;
mod rendition;
mod status;
mod work;

pub use accepted::Accepted;
pub use envelope::{ENVELOPE_VERSION, EnvelopeError, Focus, RESIZE_TASK, ResizeArgs, TaskEnvelope};
pub use error_code::TaskErrorCode;
pub use format::{Fit, FormatChoice, OutputFormat, SourceFormat};
pub use id::{InvalidTaskId, NegotiatedName, TaskId, ThumbnailName};
pub use import::{Import, MAX_KEY_BYTES, check_key};
pub use record::{
    FailureKind, ImageInfo, OperatorAction, StateChange, TaskRecord, WebhookAttempt, WebhookLog, WebhookState,
};
pub use rendition::{DEFAULT_PRESETS, MAX_RENDITIONS, Rendition, RenditionName, RenditionSpec, Variant, parse_presets};
pub use status::TaskStatus;
pub use work::{DEFAULT_MAX_TASK_WORK_MS, TooMuchWork, check_work, estimate_ms, ms_per_megapixel};
