//! Completion webhooks: the signing secret, the address guard's switch, attempts and bounds.

use std::time::Duration;

use super::{SettingsError, env::Env};
use crate::access::Secret;

/// How completion webhooks (`callback_url`) are delivered.
#[derive(Clone, Debug)]
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
        let secret = env.string("THUMBQ_WEBHOOK_SECRET", "");
        if !secret.is_empty() && secret.len() < MIN_SECRET_LEN {
            let reason = format!("a webhook secret needs at least {MIN_SECRET_LEN} characters");
            return Err(env.error("THUMBQ_WEBHOOK_SECRET", "(hidden)", &reason));
        }
        Ok(Self {
            secret: Some(secret).filter(|s| !s.is_empty()).map(Secret::new),
            allow_private: env.flag("THUMBQ_WEBHOOK_ALLOW_PRIVATE", false)?,
            max_attempts: env.positive("THUMBQ_WEBHOOK_MAX_ATTEMPTS", 5)?,
            timeout: env.millis("THUMBQ_WEBHOOK_TIMEOUT_MS", 5000)?,
            concurrency: env.positive("THUMBQ_WEBHOOK_CONCURRENCY", 16)?,
        })
    }
}
