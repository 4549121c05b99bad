//! A task's lifecycle: the one state machine. The transition script in Redis is generated from it.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// Cancelled before it finished (`DELETE /tasks/{id}`): no thumbnail is made, the original is deleted.
    Revoked,
}

impl TaskStatus {
    /// Every state, in rank order.
    pub const ALL: [Self; 6] = [Self::Pending, Self::Started, Self::Retry, Self::Success, Self::Failure, Self::Revoked];

    /// Whether the task can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failure | Self::Revoked)
    }

    /// Order within one attempt; a transition may only keep or raise `(attempt, rank)`.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Started => 1,
            Self::Retry => 2,
            Self::Success | Self::Failure | Self::Revoked => 3,
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
            Self::Revoked => "REVOKED",
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
            "REVOKED" => Self::Revoked,
            other => return Err(format!("unknown task status {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spelling_round_trips() {
        for status in TaskStatus::ALL {
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
        for cancellable in [Pending, Started, Retry] {
            assert!(cancellable.may_become(3, Revoked, 3), "{cancellable} can be revoked at its own attempt");
        }
        for terminal in [Success, Failure, Revoked] {
            for next in TaskStatus::ALL {
                assert!(!terminal.may_become(1, next, 9), "{terminal} became {next}");
            }
        }
    }
}
