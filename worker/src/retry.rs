//! What happens after a failed attempt: another attempt after a jittered exponential delay, or the end.

use std::time::Duration;

use thumbq_common::settings::RetrySettings;

use crate::error::TaskError;

/// What to do with a task whose attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the next attempt after this delay.
    Retry(Duration),
    /// Record FAILURE; `exhausted` when a retryable error ran out of attempts (the message is dead-lettered).
    Fail {
        /// Whether attempts ran out (rather than the error being permanent).
        exhausted: bool,
    },
}

/// Decides the fate of a task whose attempt `attempt` (1-based) failed with `error`.
pub fn decide(error: &TaskError, attempt: u32, policy: &RetrySettings) -> Decision {
    if !error.is_retryable() {
        Decision::Fail { exhausted: false }
    } else if attempt >= policy.max_attempts {
        Decision::Fail { exhausted: true }
    } else {
        Decision::Retry(jitter(policy.delay_after(attempt)))
    }
}

/// "Equal jitter": half the delay fixed, half random, so retries of tasks that failed together spread out.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbq_common::Settings;

    #[test]
    fn transient_errors_retry_with_growing_delays_until_attempts_run_out() {
        let policy = Settings::default().retry;
        let transient = || TaskError::Store(std::io::Error::other("disk full"));
        let mut previous_max = Duration::ZERO;
        for attempt in 1..policy.max_attempts {
            let Decision::Retry(delay) = decide(&transient(), attempt, &policy) else {
                panic!("attempt {attempt} did not retry")
            };
            let full = policy.delay_after(attempt);
            assert!(delay >= full / 2 && delay <= full, "{delay:?} outside [{:?}, {full:?}]", full / 2);
            assert!(full > previous_max);
            previous_max = full;
        }
        assert_eq!(decide(&transient(), policy.max_attempts, &policy), Decision::Fail { exhausted: true });
    }

    #[test]
    fn permanent_errors_fail_at_once() {
        let policy = Settings::default().retry;
        assert_eq!(decide(&TaskError::MissingOriginal, 1, &policy), Decision::Fail { exhausted: false });
    }
}
