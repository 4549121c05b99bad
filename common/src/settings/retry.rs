//! Exponential backoff of transient failures: the delays, and the delay queues' tiers that serve them.

use std::time::Duration;

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Var},
};

static BASE: Var<Duration> = Var::millis("THUMBQ_RETRY_BASE_MS", "1000", "Delay after the first failed attempt");
static FACTOR: Var<u32> = Var::positive("THUMBQ_RETRY_FACTOR", "4", "Each further delay is this many times longer");
static CAP: Var<Duration> = Var::millis("THUMBQ_RETRY_CAP_MS", "300000", "Longest delay");
static MAX_ATTEMPTS: Var<u32> =
    Var::positive("THUMBQ_RETRY_MAX_ATTEMPTS", "5", "Attempts before a task fails for good");

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[&BASE, &FACTOR, &CAP, &MAX_ATTEMPTS];

/// Exponential backoff of transient task failures; each delay is served by a RabbitMQ delay queue.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySettings {
    /// `THUMBQ_RETRY_BASE_MS`, default `1000`: delay after the first failed attempt.
    pub base: Duration,
    /// `THUMBQ_RETRY_FACTOR`, default `4`: each further delay is this many times the one before.
    pub factor: u32,
    /// `THUMBQ_RETRY_CAP_MS`, default `300000` (5 min): no delay is longer.
    pub cap: Duration,
    /// `THUMBQ_RETRY_MAX_ATTEMPTS`, default `5`: attempts in all before a task fails for good.
    pub max_attempts: u32,
}

impl RetrySettings {
    /// The delay before attempt `failed + 1`, after attempt `failed` (1-based) failed.
    pub fn delay_after(&self, failed: u32) -> Duration {
        let factor = u64::from(self.factor).saturating_pow(failed.saturating_sub(1));
        let millis = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX).saturating_mul(factor);
        Duration::from_millis(millis).min(self.cap)
    }

    /// Every distinct delay a task can wait, shortest first: one delay queue each.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers: Vec<Duration> = (1..self.max_attempts).map(|a| self.delay_after(a)).collect();
        tiers.dedup();
        tiers
    }

    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            base: env.get(&BASE)?,
            factor: env.get(&FACTOR)?,
            cap: env.get(&CAP)?,
            max_attempts: env.get(&MAX_ATTEMPTS)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&BASE, &self.base);
        out.put(&FACTOR, &self.factor);
        out.put(&CAP, &self.cap);
        out.put(&MAX_ATTEMPTS, &self.max_attempts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_factor_up_to_cap() {
        let retry = crate::Settings::default().retry;
        let delays: Vec<u64> = (1..=5).map(|a| retry.delay_after(a).as_secs()).collect();
        assert_eq!(delays, [1, 4, 16, 64, 256]);
        let capped = RetrySettings { max_attempts: 9, ..retry };
        assert_eq!(capped.delay_after(8), Duration::from_secs(300));
        let tiers = capped.tiers();
        assert_eq!(tiers.len(), 6, "delays past the cap share one tier: {tiers:?}");
        assert_eq!(tiers.last(), Some(&Duration::from_secs(300)));
    }
}
