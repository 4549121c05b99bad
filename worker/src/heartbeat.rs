//! The worker's entry in the registry (`GET /workers`): a heartbeat every `THUMBQ_WORKER_HEARTBEAT_SECS` with its
//! counters, removed on graceful shutdown and expiring on its own after three missed heartbeats.

use std::sync::{Arc, atomic::Ordering};

use chrono::Utc;
use thumbq_common::state_store::workers::WorkerInfo;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::state::WorkerState;

/// Heartbeats until `stop`, then unregisters.
pub async fn heartbeat(ctx: Arc<WorkerState>, stop: CancellationToken) {
    let settings = &ctx.settings.worker;
    let started_at = Utc::now();
    loop {
        let info = WorkerInfo {
            id: settings.id.clone(),
            host: settings.host.clone(),
            pid: std::process::id(),
            concurrency: settings.concurrency,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            heartbeat_at: Utc::now(),
            done: ctx.counters.done.load(Ordering::Relaxed),
            failed: ctx.counters.failed.load(Ordering::Relaxed),
            in_flight: ctx.counters.in_flight.load(Ordering::Relaxed),
        };
        if let Err(e) = ctx.states.heartbeat(&info, settings.heartbeat * 3).await {
            debug!(error = %e, "heartbeat failed"); // the outage is logged once by the state store
        }
        tokio::select! {
            () = tokio::time::sleep(settings.heartbeat) => {}
            () = stop.cancelled() => break,
        }
    }
    if let Err(e) = ctx.states.unregister(&settings.id).await {
        debug!(error = %e, "could not unregister; the entry expires on its own");
    }
}
