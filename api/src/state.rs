//! What every handler shares: settings, the stores, the publisher and the task-event feed.

use std::sync::Arc;

use thumbq_common::{
    Settings, TaskRecord,
    broker::{PublisherLink, Topology},
    file_store::SharedFileStore,
    links::Links,
    state_store::StateStore,
};
use tokio_util::sync::CancellationToken;

use crate::events::TaskEvents;

/// The API's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The settings the API started with.
    pub settings: Arc<Settings>,
    /// Originals and thumbnails.
    pub store: SharedFileStore,
    /// Task records.
    pub states: StateStore,
    /// Publishes tasks; its own task keeps the RabbitMQ connection up.
    pub publisher: Arc<PublisherLink>,
    /// Wakes long polls when a task changes.
    pub events: TaskEvents,
    /// Cancelled when the server is shutting down, so long polls answer at once.
    pub shutdown: CancellationToken,
    /// Renders the process's Prometheus metrics.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Room for upload bodies, one permit a KiB (`THUMBQ_UPLOAD_MEMORY_MB`).
    pub upload_memory: Arc<tokio::sync::Semaphore>,
    /// Absolute URLs, signed when `THUMBQ_SIGNED_URLS` is on.
    pub links: Links,
    /// Work a request leaves running after its answer (rebuilding a lost record); the server waits for it on
    /// shutdown, so none of it writes after the API has stopped.
    pub background: tokio_util::task::TaskTracker,
}

impl AppState {
    /// Builds the state; nothing connects yet, so the API starts (and reports not ready) while services are down.
    pub fn new(settings: Settings, store: SharedFileStore, shutdown: CancellationToken) -> anyhow::Result<Self> {
        use anyhow::Context;
        let states = StateStore::new(&settings.redis)
            .context("failed to set up the Redis pool")?
            .keeping_job_items_for(settings.jobs.item_ttl);
        let topology = Topology::new(&settings.amqp, &settings.retry);
        let publisher = PublisherLink::start(settings.amqp.clone(), topology, "thumbq-api");
        let events = TaskEvents::start(&settings.redis, states.keys().events(), shutdown.clone());
        let metrics = thumbq_common::metrics::install();
        thumbq_common::metrics::zero_api_counters(&settings.amqp.queue);
        Ok(Self {
            store,
            states,
            publisher: Arc::new(publisher),
            events,
            links: Links::new(&settings),
            background: tokio_util::task::TaskTracker::new(),
            upload_memory: Arc::new(tokio::sync::Semaphore::new(settings.limits.upload_memory_mb as usize * 1024)),
            settings: Arc::new(settings),
            shutdown,
            metrics,
        })
    }
}

impl AppState {
    /// The absolute URL of the thumbnail `name`, signed when signed URLs are on.
    pub fn thumbnail_url(&self, name: &str) -> String {
        self.links.thumbnail_url(name)
    }

    /// A record as the API answers it: with the URLs of its thumbnail and renditions.
    pub fn with_urls(&self, record: TaskRecord) -> TaskRecord {
        self.links.with_urls(record)
    }
}
