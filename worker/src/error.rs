//! Errors of one task, and the one place that decides which are worth retrying.
//!
//! Rule: a failure that the same input will always reproduce (a corrupt image, a missing original, a crash in the
//! decoder) is permanent; a failure of the machinery around it (file store I/O, Redis) is transient and retried.

use std::io;

use thumbq_common::{state_store::StateError, task::FailureKind};

use crate::pipeline::PipelineError;

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
}

impl TaskError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(_) | Self::State(StateError::Unavailable(_)) => true,
            Self::Image(_) | Self::MissingOriginal | Self::Crashed(_) | Self::State(StateError::Corrupt { .. }) => {
                false
            }
        }
    }

    /// Whether Redis is down: the task cannot even be recorded, so it is deferred without using up an attempt.
    pub fn is_redis_outage(&self) -> bool {
        matches!(self, Self::State(StateError::Unavailable(_)))
    }

    /// What the task's FAILURE record says when this error ends it.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            Self::Image(PipelineError::Probe(_) | PipelineError::Decode(_)) => FailureKind::InvalidImage,
            _ => FailureKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbq_common::{image_probe::ProbeError, task::TaskId};

    #[test]
    fn each_kind_of_error_is_classified_once() {
        let cases: [(TaskError, bool, FailureKind); 8] = [
            (PipelineError::OverBudget { needed_mib: 900, budget_mib: 512 }.into(), false, FailureKind::Internal),
            (PipelineError::Decode("truncated".into()).into(), false, FailureKind::InvalidImage),
            (PipelineError::Probe(ProbeError::NotAnImage).into(), false, FailureKind::InvalidImage),
            (PipelineError::Encode("oom".into()).into(), false, FailureKind::Internal),
            (TaskError::MissingOriginal, false, FailureKind::Internal),
            (TaskError::Crashed("panic".into()), false, FailureKind::Internal),
            (io::Error::other("disk full").into(), true, FailureKind::Internal),
            (StateError::Unavailable("refused".into()).into(), true, FailureKind::Internal),
        ];
        for (error, retryable, kind) in cases {
            assert_eq!(error.is_retryable(), retryable, "{error}");
            assert_eq!(error.failure_kind(), kind, "{error}");
        }
        let corrupt = TaskError::State(StateError::Corrupt { id: TaskId::new(), reason: "x".into() });
        assert!(!corrupt.is_retryable());
        assert!(TaskError::State(StateError::Unavailable("x".into())).is_redis_outage());
        assert!(!TaskError::Store(io::Error::other("x")).is_redis_outage());
    }
}
