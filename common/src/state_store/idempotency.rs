//! Idempotency keys of uploads (`Idempotency-Key`, as Stripe and the IETF draft define it): one per API key's key,
//! `<prefix>idempotency:<owner>:<key>`, kept [`IDEMPOTENCY_TTL`]. While the first request with it is being stored
//! its value is [`PENDING`]; then what that request made (the API's answer and the request's fingerprint), which a
//! retry gets back instead of a second task. A first request that fails releases its key, so a retry can make the
//! task.

use std::time::Duration;

use redis::AsyncCommands;

use super::{StateError, StateStore};

/// How long a key is kept after its first request.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// The value of a key whose first request is still being stored.
pub const PENDING: &str = "pending";

impl StateStore {
    /// Takes `key` of `owner` for a first request (`true`), unless another request has it (`false`).
    pub async fn claim_idempotency_key(&self, owner: &str, key: &str) -> Result<bool, StateError> {
        let name = self.keys.idempotency(owner, key);
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(IDEMPOTENCY_TTL.as_secs()));
        self.run_durable(&name, async |conn| conn.set_options::<_, _, Option<String>>(&name, PENDING, options).await)
            .await
            .map(|set| set.is_some())
    }

    /// What `key` of `owner` holds: [`PENDING`], the first request's outcome, or `None` (never used, expired, or
    /// released).
    pub async fn idempotency_key(&self, owner: &str, key: &str) -> Result<Option<String>, StateError> {
        let name = self.keys.idempotency(owner, key);
        self.run(async |conn| conn.get(&name).await).await
    }

    /// Records the outcome of the first request with `key` of `owner`, for its retries.
    pub async fn complete_idempotency_key(&self, owner: &str, key: &str, outcome: &str) -> Result<(), StateError> {
        let name = self.keys.idempotency(owner, key);
        self.run_durable(&name, async |conn| conn.set_ex(&name, outcome, IDEMPOTENCY_TTL.as_secs()).await).await
    }

    /// Releases `key` of `owner` after its first request failed: a retry makes the task.
    pub async fn release_idempotency_key(&self, owner: &str, key: &str) -> Result<(), StateError> {
        let name = self.keys.idempotency(owner, key);
        self.run(async |conn| conn.del(&name).await).await
    }
}
