//! `dedupe=true`: `<prefix>dedupe:<owner>:<fingerprint>` names the task that made thumbnails of an original (its
//! SHA-256) with the same parameters, for as long as task records live. An upload that finds a successful one copies
//! its thumbnails instead of decoding again.

use redis::AsyncCommands;

use super::{StateError, StateStore};
use crate::task::TaskId;

impl StateStore {
    /// The task remembered for `fingerprint` of `owner`, if any (it may since have failed or expired).
    pub async fn dedupe_candidate(&self, owner: &str, fingerprint: &str) -> Result<Option<TaskId>, StateError> {
        let name = self.keys.dedupe(owner, fingerprint);
        let id: Option<String> = self.run(async |conn| conn.get(&name).await).await?;
        Ok(id.and_then(|id| id.parse().ok()))
    }

    /// Remembers `id` as the task for `fingerprint` of `owner`, as long as its record lives.
    pub async fn remember_for_dedupe(&self, owner: &str, fingerprint: &str, id: TaskId) -> Result<(), StateError> {
        let (name, ttl) = (self.keys.dedupe(owner, fingerprint), self.ttl.as_secs());
        self.run(async |conn| conn.set_ex(&name, id.to_string(), ttl).await).await
    }
}
