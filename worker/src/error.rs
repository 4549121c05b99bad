//! Errors of one task, and the one place that decides which are worth retrying.
//!
//! Rule: a failure that the same input will always reproduce (a corrupt image, a missing original, a crash in the
//! decoder, a task over its time limit) is permanent; a failure of the machinery around it (file store I/O, Redis)
//! is transient and retried.
//!
//! The task's record (and so its download, its webhook and the dead letters) carries [`TaskError::code`], a stable
//! code for programs, and [`TaskError::public_message`]:
//! what was wrong with the user's image as it is, but for a fault of the machinery only what failed. Its cause
//! (which may name server paths and addresses) goes to the worker's log, in the task's span.

use std::io;

use thumbq_common::{image_probe::ProbeError, state_store::StateError, task::TaskErrorCode};

use crate::{import::SourceError, pipeline::PipelineError};

/// Why one attempt of a task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The image is not one thumbq can process. Permanent.
    #[error(transparent)]
    Image(#[from] PipelineError),
    /// The uploaded original is not in the file store. Permanent.
    #[error("the uploaded original is missing from the file store")]
    MissingOriginal,
    /// The image pipeline panicked on this input. Permanent.
    #[error("the image pipeline crashed: {0}")]
    Crashed(String),
    /// Reading or writing the file store failed. Transient.
    #[error("file store error: {0}")]
    Store(#[from] io::Error),
    /// Redis failed. Transient.
    #[error(transparent)]
    State(#[from] StateError),
    /// An import's source could not be read: transient or permanent as [`SourceError::is_retryable`] says.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl TaskError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            // OldRecord: a writer of an earlier version changed the record while it was converted.
            Self::Store(_) | Self::State(StateError::Unavailable(_) | StateError::OldRecord) => true,
            Self::Source(source) => source.is_retryable(),
            Self::Image(_)
            | Self::MissingOriginal
            | Self::Crashed(_)
            | Self::State(StateError::Corrupt { .. } | StateError::CorruptJob { .. }) => false,
        }
    }

    /// Whether Redis is down: the task cannot even be recorded, so it is deferred without using up an attempt.
    pub fn is_redis_outage(&self) -> bool {
        matches!(self, Self::State(StateError::Unavailable(_)))
    }

    /// The stable code the task's record gets for this error: one per situation. The only classification: the
    /// record's `error_kind` (and so the download's status) is the code's [`kind`](TaskErrorCode::kind).
    pub fn code(&self) -> TaskErrorCode {
        match self {
            Self::Image(PipelineError::Probe(probe)) => match probe {
                ProbeError::Empty => TaskErrorCode::EmptyImage,
                ProbeError::NotAnImage => TaskErrorCode::NotAnImage,
                ProbeError::Unsupported(_) => TaskErrorCode::UnsupportedFormat,
                ProbeError::Unreadable { .. } => TaskErrorCode::UnreadableImage,
                ProbeError::TooLarge { .. } => TaskErrorCode::TooManyPixels,
            },
            Self::Image(PipelineError::AnimationTooLarge { .. }) => TaskErrorCode::TooManyPixels,
            Self::Image(PipelineError::Decode(_)) => TaskErrorCode::CorruptImage,
            Self::Image(PipelineError::OverBudget { .. }) => TaskErrorCode::DecoderLimit,
            Self::Image(PipelineError::Encode(_)) => TaskErrorCode::EncodeFailed,
            Self::Image(PipelineError::TimeLimit { .. }) => TaskErrorCode::TimeLimit,
            Self::MissingOriginal => TaskErrorCode::OriginalMissing,
            Self::Crashed(_) => TaskErrorCode::PipelineCrashed,
            Self::Store(_) => TaskErrorCode::StoreFailed,
            Self::State(StateError::Unavailable(_) | StateError::OldRecord) => TaskErrorCode::StateStoreFailed,
            Self::State(StateError::Corrupt { .. } | StateError::CorruptJob { .. }) => TaskErrorCode::CorruptRecord,
            Self::Source(source) => match source {
                SourceError::Refused(_) => TaskErrorCode::FetchRefused,
                SourceError::NotFound(_) => TaskErrorCode::SourceNotFound,
                SourceError::TooLarge(_) => TaskErrorCode::SourceTooLarge,
                SourceError::Status { .. }
                | SourceError::Unreachable(_)
                | SourceError::ImportStore(_)
                | SourceError::NoImportStore => TaskErrorCode::FetchFailed,
            },
        }
    }

    /// What the task's record says about this error: the message itself when it describes the request or the
    /// user's image (no server detail in it), else a safe sentence naming what failed. The full error goes to the
    /// log.
    pub fn public_message(&self) -> String {
        let internal = |what: &str| format!("internal error: {what}; the worker's log has the cause");
        match self {
            Self::Image(
                PipelineError::Probe(_)
                | PipelineError::AnimationTooLarge { .. }
                | PipelineError::Decode(_)
                | PipelineError::OverBudget { .. }
                | PipelineError::TimeLimit { .. },
            )
            | Self::MissingOriginal => self.to_string(),
            // About the URL or key the request named, not about the service.
            Self::Source(
                SourceError::Refused(_)
                | SourceError::NotFound(_)
                | SourceError::TooLarge(_)
                | SourceError::Status { .. }
                | SourceError::Unreachable(_),
            ) => self.to_string(),
            Self::Source(SourceError::ImportStore(_) | SourceError::NoImportStore) => {
                internal("the import store could not be read")
            }
            Self::Image(PipelineError::Encode(_)) => internal("the thumbnail could not be encoded"),
            Self::Crashed(_) => internal("the image pipeline crashed"),
            Self::Store(_) => internal("the file store could not be read or written"),
            Self::State(_) => internal("the task store (Redis) failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbq_common::task::{FailureKind, TaskId};

    #[test]
    fn each_kind_of_error_is_classified_once() {
        use {FailureKind::*, TaskErrorCode as Code};
        let time_limit = PipelineError::TimeLimit { limit: std::time::Duration::from_secs(60), made: 3, of: 8 };
        let probe = |e: ProbeError| TaskError::from(PipelineError::Probe(e));
        let unreadable = ProbeError::Unreadable { format: "png", reason: "bad IHDR".into() };
        let too_large = ProbeError::TooLarge { width: 9000, height: 9000, max_pixels: 50_000_000 };
        let corrupt_record = StateError::Corrupt { id: TaskId::new(), reason: "x".into() };
        let source = |e: SourceError| TaskError::from(e);
        let cases: [(TaskError, bool, Code, FailureKind); 22] = [
            (probe(ProbeError::Empty), false, Code::EmptyImage, InvalidImage),
            (probe(ProbeError::NotAnImage), false, Code::NotAnImage, InvalidImage),
            (probe(ProbeError::Unsupported("ico".into())), false, Code::UnsupportedFormat, InvalidImage),
            (probe(unreadable), false, Code::UnreadableImage, InvalidImage),
            (probe(too_large), false, Code::TooManyPixels, InvalidImage),
            (PipelineError::Decode("truncated".into()).into(), false, Code::CorruptImage, InvalidImage),
            (
                PipelineError::OverBudget { needed_mib: 900, budget_mib: 512 }.into(),
                false,
                Code::DecoderLimit,
                InvalidImage,
            ),
            (time_limit.into(), false, Code::TimeLimit, TimeLimit),
            (TaskError::MissingOriginal, false, Code::OriginalMissing, Internal),
            (PipelineError::Encode("oom".into()).into(), false, Code::EncodeFailed, Internal),
            (TaskError::Crashed("panic".into()), false, Code::PipelineCrashed, Internal),
            (io::Error::other("disk full").into(), true, Code::StoreFailed, Internal),
            (StateError::Unavailable("refused".into()).into(), true, Code::StateStoreFailed, Internal),
            (corrupt_record.into(), false, Code::CorruptRecord, Internal),
            (source(SourceError::Refused("10.0.0.1".into())), false, Code::FetchRefused, Source),
            (source(SourceError::NotFound("404".into())), false, Code::SourceNotFound, Source),
            (source(SourceError::TooLarge(10)), false, Code::SourceTooLarge, Source),
            (source(SourceError::Status { status: 403 }), false, Code::FetchFailed, Source),
            (source(SourceError::Status { status: 503 }), true, Code::FetchFailed, Source),
            (source(SourceError::Status { status: 429 }), true, Code::FetchFailed, Source),
            (source(SourceError::Unreachable("refused".into())), true, Code::FetchFailed, Source),
            (source(SourceError::ImportStore("timeout".into())), true, Code::FetchFailed, Source),
        ];
        let mut seen = std::collections::HashSet::new();
        for (error, retryable, code, kind) in cases {
            assert_eq!(error.is_retryable(), retryable, "{error}");
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(error.code().kind(), kind, "{error}");
            seen.insert(code);
        }
        let unused: Vec<_> = Code::ALL.into_iter().filter(|c| !seen.contains(c)).collect();
        // A message that is not a task never becomes a TaskError: the poison path records its code (processor.rs).
        assert_eq!(unused, [Code::InvalidMessage], "every other code is some TaskError's");
        assert!(TaskError::State(StateError::Unavailable("x".into())).is_redis_outage());
        assert!(!TaskError::Store(io::Error::other("x")).is_redis_outage());
    }

    #[test]
    fn records_get_the_image_s_problem_as_it_is_but_no_server_detail_of_an_internal_fault() {
        let path = "/srv/thumbq/store/thumbnails/.tmp-1234";
        let store = TaskError::Store(io::Error::new(io::ErrorKind::PermissionDenied, format!("at path {path:?}")));
        assert!(store.to_string().contains(path), "the log keeps the cause: {store}");
        let internal = [
            store,
            TaskError::Crashed(format!("panicked at {path}")),
            PipelineError::Encode(format!("cannot write {path}")).into(),
            StateError::Unavailable("redis://10.0.0.7:6379 refused".into()).into(),
            SourceError::ImportStore(format!("cannot read {path}")).into(),
        ];
        for error in internal {
            let message = error.public_message();
            assert!(message.starts_with("internal error: ") && message.contains("log"), "{message}");
            assert!(!message.contains('/') && !message.contains(".tmp") && !message.contains("10.0"), "{message}");
        }
        let truncated = TaskError::from(PipelineError::Decode("the JPEG is truncated".into()));
        assert_eq!(truncated.public_message(), truncated.to_string(), "the user's image is described as it is");
        let late =
            TaskError::from(PipelineError::TimeLimit { limit: std::time::Duration::from_secs(60), made: 1, of: 8 });
        assert!(late.public_message().starts_with("time limit: "), "{}", late.public_message());
    }
}
