//! The job pump: turns running jobs' items into tasks on the bulk lane (imports, or renditions of kept originals). One worker pumps at a time (a lease
//! in Redis, renewed every turn; another takes over within [`LEASE`] when it stops). Each turn visits every running
//! job in turn and queues at most [`BATCH`] of its items, and never more than leave `THUMBQ_JOB_WINDOW` of them
//! queued and not yet ended: running jobs share the lane fairly, and RabbitMQ holds a window of each, not a million.
//! A job is refilled once half its window has room, so each listing of the import store brings a batch.
//!
//! Where a job is lives in Redis (its cursor: the last item queued), and the cursor moves with the counts in one
//! script, after the items are queued. A pump that dies between the two leaves items after the cursor that it
//! already made: the next turn makes them again, finds their tasks (an item's task id comes from its job and its
//! source) and publishes those still PENDING once more, which a worker takes as the duplicate it is. So no item is
//! done twice, and none is lost.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use thumbq_common::{
    broker::{BrokerError, Publisher},
    job::{JobId, JobSpec, JobStatus, item_id, rerender_id},
    reconnect::{Backoff, reconnect_backoff},
    state_store::{StateError, Update, jobs::PumpView},
    task::{ImageInfo, Import, TaskEnvelope, TaskRecord, TaskStatus},
    webhook::WebhookMessage,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{import::SourceError, state::WorkerState};

/// How often the pump turns while no job runs.
const TURN: Duration = Duration::from_millis(250);

/// How often it turns while a job runs: the window refills as items end, so workers that make an item in a few
/// milliseconds do not wait for the next turn (at 250 ms, 50 items a turn capped a job at 200 items a second).
const BUSY_TURN: Duration = Duration::from_millis(20);

/// How often an idle pump reads every shard's running and ended jobs even though the jobs' generation has not
/// moved: a bound on a job missed when raising the generation failed (or raised by a process of an older version).
const FULL_LOOK: Duration = Duration::from_secs(5);

/// How long the lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(5);

/// Items of one job queued in one turn at most.
const BATCH: u64 = 50;

/// Why a turn stopped.
#[derive(Debug, thiserror::Error)]
enum PumpError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Reading whether a kept original is there.
    #[error("the file store failed: {0}")]
    Store(#[from] std::io::Error),
}

/// Pumps until `stop` is cancelled (the session's end), publishing with `publisher`.
pub async fn run(ctx: Arc<WorkerState>, publisher: Publisher, stop: CancellationToken) {
    // A failing turn (the import store or Redis down) is tried again after growing delays, and logged once until
    // a turn succeeds again.
    let (mut backoff, mut wait, mut failing) = (reconnect_backoff(), TURN, false);
    let mut idle = Idle::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = match turn(&ctx, &publisher, &mut idle).await {
            Ok(running) => {
                if std::mem::take(&mut failing) {
                    info!("the job pump's turns succeed again");
                }
                backoff.reset();
                if running > 0 { BUSY_TURN } else { TURN }
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    warn!(error = %e, "the job pump's turn failed; trying again with backoff");
                }
                backoff.next_backoff().unwrap_or(TURN).max(TURN)
            }
        };
    }
}

/// What an idle pump saw last: the jobs' generation when it found no job, and when it last read every shard.
#[derive(Default)]
struct Idle {
    generation: Option<u64>,
    looked: Option<std::time::Instant>,
}

/// One turn over every running job, if this worker holds the lease: how many were running.
async fn turn(ctx: &WorkerState, publisher: &Publisher, idle: &mut Idle) -> Result<usize, PumpError> {
    // Every worker turns four times a second. Idle, a turn reads the jobs' generation alone (one command, where
    // the running and ended jobs are two a shard: 32 on a Redis Cluster); only when it moved, or every few
    // seconds, the jobs themselves. Read before the lease is taken, so an idle turn runs no script either.
    let generation = ctx.states.jobs_generation().await?;
    if idle.generation == Some(generation) && idle.looked.is_some_and(|at| at.elapsed() < FULL_LOOK) {
        return Ok(0);
    }
    let (ended, jobs) = (ctx.states.ended_jobs(20).await?, ctx.states.running_jobs().await?);
    let found = !(ended.is_empty() && jobs.is_empty());
    *idle = Idle { generation: (!found).then_some(generation), looked: Some(std::time::Instant::now()) };
    if !found || !ctx.states.hold_pump_lease(&ctx.settings.worker.id, LEASE).await? {
        return Ok(0);
    }
    // Jobs that ended with a `callback_url`: their webhook queued (at least once), then forgotten.
    for job in ended {
        if let Some(url) = ctx.states.job(job).await?.and_then(|j| j.callback_url) {
            publisher.publish_webhook(&WebhookMessage::for_job(job, url), None).await?;
        }
        ctx.states.forget_ended_job(job).await?;
    }
    let mut running = 0;
    for id in jobs {
        let Some(view) = ctx.states.pump_view(id).await? else { continue };
        if view.status != JobStatus::Running {
            continue;
        }
        running += 1;
        let in_flight = view.queued.saturating_sub(view.ended);
        let window = u64::from(ctx.settings.jobs.window);
        let mut room = window.saturating_sub(in_flight).min(BATCH);
        // Refilled once half the window has room, not item by item: a listing of the import store (a request to
        // S3) then brings many items, not one or two; the half still queued keeps the bulk lane's workers busy.
        if room < (window / 2).clamp(1, BATCH) {
            continue;
        }
        // Failed items to make again come first, within the same window.
        if room > 0 {
            room -= retry_items(ctx, publisher, id, &view, room).await?;
        }
        if room > 0 {
            pump_job(ctx, publisher, id, &view, room).await?;
        }
    }
    Ok(running)
}

/// Queues up to `room` more items of job `id`.
async fn pump_job(
    ctx: &WorkerState,
    publisher: &Publisher,
    id: JobId,
    view: &PumpView,
    room: u64,
) -> Result<(), PumpError> {
    let now = Utc::now();
    let import = |import: Import| (view.template.for_item(id, item_id(id, &import), import, now), None);
    let (items, cursor, found, listed) = match &view.spec {
        JobSpec::Sources(_) => {
            let from: u64 = view.cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
            if from >= view.total {
                return Ok(());
            }
            let urls = ctx.states.job_sources(id, from, room).await?;
            let next = from + urls.len() as u64;
            (urls.into_iter().map(|url| import(Import::Source(url))).collect::<Vec<_>>(), next.to_string(), 0, true)
        }
        JobSpec::Prefix(prefix) => {
            if view.listed {
                return Ok(());
            }
            let store = ctx.importer.store().ok_or(SourceError::NoImportStore)?;
            let keys = store
                .list_after(prefix, view.cursor.as_deref(), room as usize)
                .await
                .map_err(|e| SourceError::ImportStore(e.to_string()))?;
            let listed = (keys.len() as u64) < room;
            let cursor = keys.last().cloned().or_else(|| view.cursor.clone()).unwrap_or_default();
            let found = keys.len() as u64;
            (keys.into_iter().map(|key| import(Import::Key(key))).collect(), cursor, found, listed)
        }
        JobSpec::Rerender(filter) => {
            if view.listed {
                return Ok(());
            }
            let (records, cursor, listed) =
                ctx.states.rerender_candidates(filter, view.cursor.as_deref(), view.created_ms, room as usize).await?;
            let mut items = Vec::with_capacity(records.len());
            for record in records {
                // A task whose original was not kept (or has been deleted since) is not one of the job's items.
                if ctx.store.original_head(record.id, 1).await?.is_some() {
                    let task = rerender_id(id, record.id);
                    items.push((view.template.for_rerender(id, task, record.id, now), record.source));
                }
            }
            let cursor = cursor.or_else(|| view.cursor.clone()).unwrap_or_default();
            let found = items.len() as u64;
            (items, cursor, found, listed)
        }
    };
    let queued = items.len() as u64;
    for (envelope, source) in items {
        queue_item(ctx, publisher, view, envelope, source).await?;
    }
    ctx.states.advance_job(id, &cursor, queued, found, listed).await?;
    if queued > 0 || listed {
        debug!(job = %id, queued, listed, "job items queued");
    }
    if listed && found > 0 {
        info!(job = %id, "the job's listing is complete");
    }
    Ok(())
}

/// Queues up to `room` of job `id`'s failed items again (`POST /jobs/{id}/retry-failed`): how many it took.
///
/// As with new items, the list moves on after they are queued: an item met again after a crash is published again
/// while PENDING, left alone once a worker has it, and requeued only while it is FAILURE.
async fn retry_items(
    ctx: &WorkerState,
    publisher: &Publisher,
    id: JobId,
    view: &PumpView,
    room: u64,
) -> Result<u64, PumpError> {
    let retries = ctx.states.job_retries(id, room).await?;
    let mut kept = Vec::new();
    for &task in &retries {
        let record = ctx.states.get(task).await?;
        let envelope = record.as_ref().and_then(|r| match (&r.import, r.rendition_of) {
            (Some(import), _) => Some(view.template.for_item(id, task, import.clone(), Utc::now())),
            (None, Some(from)) => Some(view.template.for_rerender(id, task, from, Utc::now())),
            (None, None) => None,
        });
        let (Some(record), Some(envelope)) = (record, envelope) else {
            kept.push(task); // gone: it stays failed
            continue;
        };
        let publish = match record.status {
            TaskStatus::Failure if ctx.states.requeue(&envelope, None).await? == Update::Applied => true,
            TaskStatus::Failure => {
                kept.push(task); // erased meanwhile
                false
            }
            TaskStatus::Pending => true,
            _ => false,
        };
        if publish {
            publisher.publish_job_item(&envelope).await?;
        }
    }
    let taken = retries.len() as u64;
    if taken > 0 {
        ctx.states.advance_retries(id, taken, &kept).await?;
        info!(job = %id, taken, "failed job items queued again");
    }
    Ok(taken)
}

/// Makes one item's task (reading `source`, if known) and publishes it; an item made before (by a pump that died
/// before moving the cursor) is published again only if it is still PENDING.
async fn queue_item(
    ctx: &WorkerState,
    publisher: &Publisher,
    view: &PumpView,
    envelope: TaskEnvelope,
    source: Option<ImageInfo>,
) -> Result<(), PumpError> {
    match ctx.states.get(envelope.id).await? {
        Some(record) if record.status != TaskStatus::Pending => return Ok(()),
        Some(_) => {}
        None => {
            let record = TaskRecord { owner: view.owner.clone(), ..TaskRecord::pending(&envelope, source) };
            ctx.states.create(&record).await?;
        }
    }
    publisher.publish_job_item(&envelope).await?;
    Ok(())
}
