//! The store's garbage collection, run by every worker every `THUMBQ_SWEEP_INTERVAL_SECS` (several workers
//! sweeping at once is harmless: deleting is idempotent).
//!
//! The policy: an original is kept while its task can still run. A permanent FAILURE deletes it at once, and so
//! does SUCCESS unless the upload keeps it for renditions later (`THUMBQ_KEEP_ORIGINALS`, the default: the
//! processor decides); a task dead-lettered after its retries ran out keeps it, so `replay-dead-letters` can run
//! it again, until its record expires (`THUMBQ_RESULT_TTL_SECS`), as a kept one stays until then. The sweep deletes originals older than the record
//! TTL whose record is gone, and temporary files of writes a crash interrupted. With `THUMBQ_THUMBNAIL_TTL_SECS`,
//! it also deletes thumbnails older than that, with their records (which expire at the same age anyway).

use std::{sync::Arc, time::Duration};

use thumbq_common::{file_store::FileStore, state_store::StateStore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::state::WorkerState;

/// A temporary file older than this belongs to a write that will never finish.
pub const TEMPORARY_AGE: Duration = Duration::from_secs(3600);

/// What one sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Originals of tasks whose record expired.
    pub originals: usize,
    /// Temporary files of interrupted writes.
    pub temporary: usize,
    /// Thumbnails past their retention.
    pub thumbnails: usize,
}

/// How old things may get.
#[derive(Clone, Copy, Debug)]
pub struct Ages {
    /// Task records' TTL: an original older than this without a record is garbage.
    pub record_ttl: Duration,
    /// A temporary file older than this belongs to a write that will never finish.
    pub temporary: Duration,
    /// Thumbnails older than this are deleted (`None`: kept forever).
    pub thumbnail_ttl: Option<Duration>,
}

/// One sweep: originals older than the record TTL with no record left, old temporary files, expired thumbnails.
pub async fn sweep(store: &dyn FileStore, states: &StateStore, ages: Ages) -> anyhow::Result<Swept> {
    let mut swept = Swept { temporary: store.sweep_temporary(ages.temporary).await?, ..Swept::default() };
    if let Some(ttl) = ages.thumbnail_ttl {
        for name in store.thumbnails_older_than(ttl).await? {
            if let Some(record) = states.get(name.id).await? {
                states.delete(&record).await?;
            }
            store.delete_thumbnail(&name).await?;
            swept.thumbnails += 1;
        }
    }
    for id in store.originals_older_than(ages.record_ttl).await? {
        if states.get(id).await?.is_none() {
            store.delete_original(id).await?;
            swept.originals += 1;
        }
    }
    Ok(swept)
}

/// Sweeps every `THUMBQ_SWEEP_INTERVAL_SECS` until `stop`.
pub async fn run(ctx: Arc<WorkerState>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(ctx.settings.worker.sweep_interval) => {}
            () = stop.cancelled() => return,
        }
        let ages = Ages {
            record_ttl: ctx.settings.redis.result_ttl,
            temporary: TEMPORARY_AGE,
            thumbnail_ttl: ctx.settings.store.thumbnail_ttl,
        };
        match sweep(ctx.store.as_ref(), &ctx.states, ages).await {
            Ok(swept) if swept != Swept::default() => info!(?swept, "swept the store"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "sweeping the store failed; trying again next time"),
        }
    }
}
