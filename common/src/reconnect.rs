//! The one backoff policy for reconnect loops (RabbitMQ sessions, the Redis event listener). `backoff` 0.4 is
//! unmaintained (RUSTSEC-2025-0012), so its use stays behind this function.

use std::time::Duration;

use backoff::{ExponentialBackoff, ExponentialBackoffBuilder};

pub use backoff::backoff::Backoff;

/// Exponential delays with jitter from 100 ms up to 5 s, retrying forever.
pub fn reconnect_backoff() -> ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(100))
        .with_max_interval(Duration::from_secs(5))
        .with_max_elapsed_time(None)
        .build()
}

/// Logs a dependency's outage once when it begins and once when it ends, however many calls fail in between.
#[derive(Debug)]
pub struct Outage {
    dependency: &'static str,
    down: std::sync::atomic::AtomicBool,
}

impl Outage {
    /// An outage tracker for `dependency` (`"redis"`, `"rabbitmq"`), starting up.
    pub const fn new(dependency: &'static str) -> Self {
        Self { dependency, down: std::sync::atomic::AtomicBool::new(false) }
    }

    /// Records a failed call; logs a warning only if the dependency was up.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        if !self.down.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tracing::warn!(dependency = self.dependency, error = %error, "dependency unavailable; retrying with backoff");
        } else {
            tracing::debug!(dependency = self.dependency, error = %error, "dependency still unavailable");
        }
    }

    /// Records a successful call; logs once if the dependency was down.
    pub fn recovered(&self) {
        if self.down.swap(false, std::sync::atomic::Ordering::SeqCst) {
            crate::metrics::reconnected(self.dependency);
            tracing::info!(dependency = self.dependency, "dependency is back");
        }
    }

    /// Whether the last call failed.
    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_flips_once_each_way() {
        let outage = Outage::new("redis");
        assert!(!outage.is_down());
        outage.failed(&"refused");
        outage.failed(&"refused again");
        assert!(outage.is_down());
        outage.recovered();
        assert!(!outage.is_down());
    }
}
