//! The worker's composition root: what every delivery, the heartbeat and the sweep share, built once by [`run`](crate::run).

use std::sync::{Arc, atomic::AtomicU64};

use thumbq_common::{Settings, file_store::SharedFileStore, links::Links, state_store::StateStore};
use tokio::sync::Semaphore;

/// What every task needs: settings, stores and the worker's name.
pub struct WorkerState {
    /// The worker's settings.
    pub settings: Settings,
    /// Originals and thumbnails.
    pub store: SharedFileStore,
    /// Task records.
    pub states: StateStore,
    /// Logs RabbitMQ outages once.
    pub rabbitmq: thumbq_common::reconnect::Outage,
    /// The worker's memory budget, one permit a MiB (`THUMBQ_WORKER_MEMORY_MB`).
    pub memory: Arc<Semaphore>,
    /// What this worker has done, for the registry.
    pub counters: Counters,
    /// The URLs a webhook's record carries, as the API would answer them.
    pub links: Links,
    /// Reads imports' originals (by URL or from the import store).
    pub importer: crate::import::Importer,
    /// Where job items' thumbnails are made, at a lower priority than uploads'.
    pub bulk: crate::bulk_pool::BulkPool,
}

/// What this worker has done, for its registry entry.
#[derive(Debug, Default)]
pub struct Counters {
    /// Tasks brought to SUCCESS.
    pub done: AtomicU64,
    /// Tasks brought to FAILURE.
    pub failed: AtomicU64,
    /// Deliveries being handled now.
    pub in_flight: AtomicU64,
}
