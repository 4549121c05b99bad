//! HTTP requests to URLs that users name (completion webhooks, imports by URL): a client that resolves through the
//! address guard ([`thumbq_common::address_guard`]), uses no proxy and is bounded in time, and the reading of its
//! errors. Both uses share it so that neither can reach an address the other would refuse.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use thumbq_common::address_guard::{self as guard, Purpose};

/// Why a request did not go through.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The target is not allowed (an internal address, a metadata service): never worth retrying.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer, a broken connection, or a timeout: worth retrying.
    #[error("{0}")]
    Unreachable(String),
}

/// Resolves host names like the system does, then keeps only the addresses the guard allows: the client connects
/// to exactly what was checked, with no second lookup a rebinding DNS server could answer differently.
struct GuardedResolver {
    allow_private: bool,
    purpose: Purpose,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (allow_private, purpose) = (self.allow_private, self.purpose);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allow_private || guard::check_ip(a.ip(), purpose).is_ok()).collect();
            if allowed.is_empty() {
                let refusal = found.first().map_or_else(
                    || format!("{} has no address", name.as_str()),
                    |a| guard::Refusal::Internal(purpose, a.ip()).to_string(),
                );
                return Err(Box::new(Refused(refusal)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The resolver's (or a redirect's) refusal, told apart from other connection errors by its type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A client for `purpose` whose every connection goes through the guard, with no proxy (a proxy would connect on
/// the client's behalf, past the guard), following `redirects` (each one's URL must check them itself: a custom
/// policy, see [`guarded_redirects`]), each request bounded by `timeout`.
pub fn client(
    allow_private: bool,
    purpose: Purpose,
    redirects: redirect::Policy,
    timeout: Duration,
) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private, purpose }))
        .no_proxy()
        .redirect(redirects)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .timeout(timeout)
        .build()
        .expect("the guarded HTTP client builds")
}

/// Follows at most `max` redirects, each to a URL the guard allows for `purpose` (a literal address never reaches
/// the resolver, so it is checked here; a host name is checked again when it resolves).
pub fn guarded_redirects(max: usize, allow_private: bool, purpose: Purpose) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            let error = Refused(format!("more than {max} redirects"));
            return attempt.error(error);
        }
        match guard::check_url(attempt.url().as_str(), allow_private, purpose) {
            Ok(_) => attempt.follow(),
            Err(refusal) => {
                let error = Refused(format!("a redirect to {}: {refusal}", attempt.url()));
                attempt.error(error)
            }
        }
    })
}

/// A refusal of the guard, or a transport failure, with the whole chain of causes in the message.
pub fn classify(error: &reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut causes = Vec::new();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return OutboundError::Refused(refused.0.clone());
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    OutboundError::Unreachable(causes.join(": "))
}
