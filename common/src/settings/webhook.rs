//! Completion webhooks: the signing secret, the address guard's switch, attempts and bounds.

use std::time::Duration;

use super::{
    Secret, SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var},
};

static SECRET: Var<Option<Secret>> = Var::new(
    "THUMBQ_WEBHOOK_SECRET",
    "",
    "HMAC-SHA256 key (32+ characters) of the `Thumbq-Signature` header of completion webhooks; without it `callback_url` is refused",
    secret,
    |secret| secret.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default(),
);
static ALLOW_PRIVATE: Var<bool> = Var::flag(
    "THUMBQ_WEBHOOK_ALLOW_PRIVATE",
    "0",
    "`1`: webhooks may go to loopback, private, link-local and metadata addresses (a receiver on the same machine); off, such targets are refused before connecting",
);
static MAX_ATTEMPTS: Var<u32> = Var::positive(
    "THUMBQ_WEBHOOK_MAX_ATTEMPTS",
    "5",
    "Delivery attempts of a webhook (waits between them: the retry tiers above), then it is dead-lettered",
);
static TIMEOUT: Var<Duration> =
    Var::millis("THUMBQ_WEBHOOK_TIMEOUT_MS", "5000", "Bound on one delivery (connect, send, answer)");
static CONCURRENCY: Var<u16> =
    Var::positive("THUMBQ_WEBHOOK_CONCURRENCY", "16", "Deliveries one worker runs at once, apart from thumbnails");

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[&SECRET, &ALLOW_PRIVATE, &MAX_ATTEMPTS, &TIMEOUT, &CONCURRENCY];

/// How completion webhooks (`callback_url`) are delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSettings {
    /// `THUMBQ_WEBHOOK_SECRET`, default none: the HMAC-SHA256 key of the `Thumbq-Signature` header, at least 32
    /// characters, the same in every worker. Without it uploads with a `callback_url` are refused (400): an
    /// unsigned webhook could be forged by anyone who learns the receiver's URL.
    pub secret: Option<Secret>,
    /// `THUMBQ_WEBHOOK_ALLOW_PRIVATE`, default `0`: with `1`, webhooks may go to loopback, private, link-local and
    /// other internal addresses (a receiver on the same machine or network; the tests). Off, such a target is
    /// refused before any connection is made.
    pub allow_private: bool,
    /// `THUMBQ_WEBHOOK_MAX_ATTEMPTS`, default `5`: deliveries tried before the webhook is dead-lettered; the waits
    /// between them are the task retries' tiers (`THUMBQ_RETRY_BASE_MS`, `_FACTOR`, `_CAP_MS`).
    pub max_attempts: u32,
    /// `THUMBQ_WEBHOOK_TIMEOUT_MS`, default `5000`: bound on one delivery (connect, send, answer).
    pub timeout: Duration,
    /// `THUMBQ_WEBHOOK_CONCURRENCY`, default `16`: deliveries one worker runs at once (its prefetch on the webhook
    /// queue, apart from the thumbnails' own).
    pub concurrency: u16,
}

/// The shortest secret accepted, as for URL signing keys.
const MIN_SECRET_LEN: usize = 32;

impl WebhookSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            secret: env.get(&SECRET)?,
            allow_private: env.get(&ALLOW_PRIVATE)?,
            max_attempts: env.get(&MAX_ATTEMPTS)?,
            timeout: env.get(&TIMEOUT)?,
            concurrency: env.get(&CONCURRENCY)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&SECRET, &self.secret);
        out.put(&ALLOW_PRIVATE, &self.allow_private);
        out.put(&MAX_ATTEMPTS, &self.max_attempts);
        out.put(&TIMEOUT, &self.timeout);
        out.put(&CONCURRENCY, &self.concurrency);
    }
}

/// `THUMBQ_WEBHOOK_SECRET`: none, or at least [`MIN_SECRET_LEN`] characters.
fn secret(text: &str) -> Result<Option<Secret>, Refused> {
    if !text.is_empty() && text.len() < MIN_SECRET_LEN {
        let reason = format!("a webhook secret needs at least {MIN_SECRET_LEN} characters");
        return Err(Refused::showing("(hidden)", reason));
    }
    Ok(Some(text.to_owned()).filter(|s| !s.is_empty()).map(Secret::new))
}
