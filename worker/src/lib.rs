//! thumbq's worker: consumes resize tasks from RabbitMQ, makes the thumbnails, and records every task's state in
//! Redis. [`run`] is the whole worker; [`run_from_env`] adds settings, logging, signals and the file store;
//! `main.rs` calls [`cli::main`], the command line, which tunes the allocator and runs [`run_from_env`] or
//! `replay-dead-letters` on a runtime, or the PDF renderer the worker starts for itself (`render-pdf`) without one.

pub mod allocator;
pub mod bulk_pool;
pub mod cli;
pub mod consumer;
pub mod error;
pub mod heartbeat;
pub mod import;
pub mod job_pump;
pub mod metrics_listener;
pub mod outbound;
pub mod pipeline;
pub mod processor;
pub mod retry;
pub mod settle;
pub mod state;
pub mod sweeper;
pub mod webhook_delivery;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use thumbq_common::{
    Settings,
    broker::Topology,
    file_store::SharedFileStore,
    reconnect::{Backoff, Outage, reconnect_backoff},
    state_store::StateStore,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::state::WorkerState;

/// A session that lasted this long was healthy: the next reconnect starts from the shortest delay again.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Runs the worker until `shutdown` is cancelled, reconnecting to RabbitMQ with backoff whenever the session fails.
/// `store` holds originals and thumbnails: any [`FileStore`](thumbq_common::file_store::FileStore) backend.
pub async fn run(settings: Settings, store: SharedFileStore, shutdown: CancellationToken) -> anyhow::Result<()> {
    let states = StateStore::new(&settings.redis)
        .context("failed to set up the Redis pool")?
        .keeping_successes_for(settings.store.thumbnail_ttl)
        .keeping_job_items_for(settings.jobs.item_ttl);
    let topology = Arc::new(Topology::new(&settings.amqp, &settings.retry));
    thumbq_common::metrics::install();
    thumbq_common::metrics::zero_worker_counters(&settings.amqp.queue);
    if let Some(address) = settings.worker.metrics {
        metrics_listener::start(address, shutdown.clone()).await?;
    }
    // Sends completion webhooks; `None` without `THUMBQ_WEBHOOK_SECRET` (the worker then leaves them queued).
    let webhooks = webhook_delivery::Sender::new(&settings.webhook).map(Arc::new);
    let memory = Arc::new(tokio::sync::Semaphore::new(settings.worker.memory_budget_mb as usize));
    let importer = import::Importer::new(&settings).context("failed to open the import store")?;
    let bulk = bulk_pool::BulkPool::new(usize::from(settings.jobs.concurrency))
        .context("failed to start the bulk items' threads")?;
    let ctx = Arc::new(WorkerState {
        bulk,
        links: thumbq_common::links::Links::new(&settings),
        importer,
        settings,
        store,
        states,
        rabbitmq: Outage::new("rabbitmq"),
        memory,
        counters: Default::default(),
    });
    let heartbeat = tokio::spawn(heartbeat::heartbeat(ctx.clone(), shutdown.clone()));
    let sweeper = tokio::spawn(sweeper::run(ctx.clone(), shutdown.clone()));
    info!(worker = %ctx.settings.worker.id, "worker starting");

    let mut backoff = reconnect_backoff();
    while !shutdown.is_cancelled() {
        let started = Instant::now();
        match consumer::consume(&ctx, &topology, webhooks.as_ref(), &shutdown).await {
            Ok(_) => break,
            Err(e) => {
                if started.elapsed() > HEALTHY_SESSION {
                    backoff.reset();
                }
                let delay = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
                ctx.rabbitmq.failed(&e);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
    // The heartbeat stops with `shutdown` and unregisters this worker.
    let _ = heartbeat.await;
    let _ = sweeper.await;
    // The tasks this worker finished, into the dashboard's history (the write is bounded).
    if let Err(e) = ctx.states.flush_history().await {
        warn!(error = %e, "the dashboard's last counts were not written");
    }
    info!("worker stopped");
    Ok(())
}

/// The worker process as `thumbq-worker run` starts it: settings from the environment, logging, the signals that
/// stop it, the file store, then [`run`]. [`cli`] calls it; so does the test suite's worker binary.
pub async fn run_from_env() -> anyhow::Result<()> {
    let settings = Settings::from_env().context("failed to read settings")?;
    let telemetry = thumbq_common::logging::init(&settings, "thumbq-worker");
    let shutdown = CancellationToken::new();
    tokio::spawn(thumbq_common::shutdown::on_signal(shutdown.clone()));
    let store = thumbq_common::file_store::open(&settings.store).await?;
    let ran = run(settings, store, shutdown).await;
    pipeline::pdf_renderer::stop_waiting();
    // The batch exporter's thread blocks while it sends: off the runtime's threads.
    tokio::task::spawn_blocking(|| telemetry.shutdown()).await?;
    ran
}
