//! One webhook POST: the guarded client ([`crate::outbound`]), no redirects, bounded time and bounded answer.

use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use thumbq_common::{
    address_guard::{self as guard, Purpose},
    settings::{Secret, WebhookSettings},
    webhook::signature,
};

use crate::outbound::{self, OutboundError};

/// Bytes of a receiver's answer read at most (for the error it may explain); the rest is never read.
const MAX_ANSWER_BYTES: usize = 4096;

/// Why a delivery did not count.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The target is not allowed (an internal address, a metadata service): never retried.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer, a broken connection, or a timeout: retried.
    #[error("{0}")]
    Unreachable(String),
    /// The receiver answered, but not with a 2xx: retried.
    #[error("the receiver answered {status}: {answer}")]
    Status {
        /// Its status.
        status: u16,
        /// The start of its answer.
        answer: String,
    },
}

impl DeliveryError {
    /// The receiver's status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends signed webhooks.
pub struct Sender {
    client: reqwest::Client,
    secret: Secret,
    allow_private: bool,
}

impl Sender {
    /// A sender for these settings; `None` without a secret (webhooks are off).
    pub fn new(settings: &WebhookSettings) -> Option<Self> {
        let secret = settings.secret.clone()?;
        // A redirect would name a new target: a receiver answers where it was asked.
        let none = reqwest::redirect::Policy::none();
        let client = outbound::client(settings.allow_private, Purpose::Webhook, none, settings.timeout);
        Some(Self { client, secret, allow_private: settings.allow_private })
    }

    /// POSTs `body` (a task record, JSON) to `url`: signed, with the event's idempotency key
    /// ([`idempotency_key`](thumbq_common::webhook::idempotency_key)). `Ok` with the status on a 2xx.
    pub async fn send(&self, url: &str, key: &str, event: &str, body: Vec<u8>) -> Result<u16, DeliveryError> {
        // Checked again here: the settings may have changed since the upload, and a literal address never reaches
        // the resolver.
        let url = guard::check_url(url, self.allow_private, Purpose::Webhook)
            .map_err(|e| DeliveryError::Refused(e.to_string()))?;
        let signed = signature::sign(self.secret.expose().as_bytes(), chrono::Utc::now().timestamp(), &body);
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static(concat!("thumbq-webhook/", env!("CARGO_PKG_VERSION"))))
            .header(signature::SIGNATURE_HEADER, signed)
            .header("Idempotency-Key", key)
            .header("Thumbq-Event", event)
            .body(body);
        let mut response = request.send().await.map_err(|e| match outbound::classify(&e) {
            OutboundError::Refused(refusal) => DeliveryError::Refused(refusal),
            OutboundError::Unreachable(reason) => DeliveryError::Unreachable(reason),
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(status);
        }
        let mut answer = Vec::new();
        while answer.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - answer.len())]),
                _ => break,
            }
        }
        Err(DeliveryError::Status { status, answer: String::from_utf8_lossy(&answer).trim().to_owned() })
    }
}
