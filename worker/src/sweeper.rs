//! The store's garbage collection, run by every worker every `THUMBQ_SWEEP_INTERVAL_SECS` (several workers
//! sweeping at once is harmless: deleting is idempotent).
//!
//! The policy: an original is kept while its task can still run. SUCCESS and a permanent FAILURE delete it at once
//! (the processor does); a task dead-lettered after its retries ran out keeps it, so `replay-dead-letters` can run
//! it again, until its record expires (`THUMBQ_RESULT_TTL_SECS`). The sweep deletes originals older than the record
//! TTL whose record is gone, and temporary files of writes a crash interrupted.

use std::{sync::Arc, time::Duration};

use thumbq_common::{file_store::FileStore, state_store::StateStore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::context::Context;

/// A temporary file older than this belongs to a write that will never finish.
pub const TEMPORARY_AGE: Duration = Duration::from_secs(3600);

/// What one sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Originals of tasks whose record expired.
    pub originals: usize,
    /// Temporary files of interrupted writes.
    pub temporary: usize,
}

/// One sweep: originals older than `record_ttl` with no record left, and temporary files older than `temp_age`.
pub async fn sweep(
    store: &dyn FileStore,
    states: &StateStore,
    record_ttl: Duration,
    temp_age: Duration,
) -> anyhow::Result<Swept> {
    let mut swept = Swept { temporary: store.sweep_temporary(temp_age).await?, ..Swept::default() };
    for id in store.originals_older_than(record_ttl).await? {
        if states.get(id).await?.is_none() {
            store.delete_original(id).await?;
            swept.originals += 1;
        }
    }
    Ok(swept)
}

/// Sweeps every `THUMBQ_SWEEP_INTERVAL_SECS` until `stop`.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(ctx.settings.worker.sweep_interval) => {}
            () = stop.cancelled() => return,
        }
        let ttl = ctx.settings.redis.result_ttl;
        match sweep(ctx.store.as_ref(), &ctx.states, ttl, TEMPORARY_AGE).await {
            Ok(swept) if swept != Swept::default() => info!(?swept, "swept the store"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "sweeping the store failed; trying again next time"),
        }
    }
}
