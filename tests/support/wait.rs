//! The one deadline loop of the tests and the bench: ask a probe until it answers, at an interval, and fail with
//! what was awaited (and the probe's last answer) once the deadline passes. Also compiled into
//! `bench/end_to_end.rs`, so it needs nothing but tokio.

use std::{fmt::Debug, time::Duration};

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `condition` holds, checking every 20 ms; fails the test with `what` after [`DEADLINE`].
pub async fn eventually(what: &str, condition: impl AsyncFnMut() -> bool) {
    Wait::new(what).until(condition).await;
}

/// A wait on something slower or costlier to ask than the defaults suit (a process booting, a retried request).
pub struct Wait {
    what: String,
    within: Duration,
    every: Duration,
}

impl Wait {
    /// A wait for `what` (named in the failure), within [`DEADLINE`], asking every 20 ms.
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into(), within: DEADLINE, every: Duration::from_millis(20) }
    }

    /// Another deadline.
    pub fn within(self, within: Duration) -> Self {
        Self { within, ..self }
    }

    /// Another interval between two questions.
    pub fn every(self, every: Duration) -> Self {
        Self { every, ..self }
    }

    /// Checks `condition` until it holds; fails the test once the deadline has passed.
    pub async fn until(self, mut condition: impl AsyncFnMut() -> bool) {
        self.until_ok(async || condition().await.then_some(()).ok_or("still false")).await;
    }

    /// Asks `probe` until it answers `Ok` and returns the answer; fails the test with the last `Err` once the
    /// deadline has passed.
    pub async fn until_ok<T, E: Debug>(self, mut probe: impl AsyncFnMut() -> Result<T, E>) -> T {
        let deadline = tokio::time::Instant::now() + self.within;
        loop {
            let last = match probe().await {
                Ok(answer) => return answer,
                Err(last) => last,
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within {:?}: {} (last: {last:?})",
                self.within,
                self.what
            );
            tokio::time::sleep(self.every).await;
        }
    }
}
