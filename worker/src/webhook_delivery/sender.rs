//! One webhook POST: the guarded resolver, no proxies, no redirects, bounded time and bounded answer.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    header::{CONTENT_TYPE, HeaderValue, USER_AGENT},
};
use thumbq_common::{
    settings::Secret,
    settings::WebhookSettings,
    webhook::{guard, signature},
};

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

/// Resolves host names like the system does, then keeps only the addresses the guard allows: the client connects
/// to exactly what was checked, with no second lookup a rebinding DNS server could answer differently.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allow_private || guard::check_ip(a.ip()).is_ok()).collect();
            if allowed.is_empty() {
                let refusal = found.first().map_or_else(
                    || format!("{} has no address", name.as_str()),
                    |a| guard::Refusal::Internal(a.ip()).to_string(),
                );
                return Err(Box::new(Refused(refusal)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The resolver's refusal, told apart from other connection errors by its type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

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
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private: settings.allow_private }))
            // A proxy would connect on the client's behalf, past the guard; a redirect would name a new target.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.min(Duration::from_secs(3)))
            .timeout(settings.timeout)
            .build()
            .expect("the webhook client builds");
        Some(Self { client, secret, allow_private: settings.allow_private })
    }

    /// POSTs `body` (a task record, JSON) to `url`: signed, with the event's idempotency key
    /// ([`idempotency_key`](thumbq_common::webhook::idempotency_key)). `Ok` with the status on a 2xx.
    pub async fn send(&self, url: &str, key: &str, event: &str, body: Vec<u8>) -> Result<u16, DeliveryError> {
        // Checked again here: the settings may have changed since the upload, and a literal address never reaches
        // the resolver.
        let url = guard::check_url(url, self.allow_private).map_err(|e| DeliveryError::Refused(e.to_string()))?;
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
        let mut response = request.send().await.map_err(|e| classify(&e))?;
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

/// A refusal of the resolver, or a transport failure, with the whole chain of causes in the message.
fn classify(error: &reqwest::Error) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut causes = Vec::new();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return DeliveryError::Refused(refused.0.clone());
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    DeliveryError::Unreachable(causes.join(": "))
}
