//! What every handler shares: settings, the stores, the publisher and the task-event feed.

use std::sync::Arc;

use thumbq_common::{
    Settings, TaskRecord,
    broker::{PublisherLink, Topology},
    file_store::SharedFileStore,
    state_store::StateStore,
};
use tokio_util::sync::CancellationToken;

use crate::{events::TaskEvents, signing::UrlSigner};

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
    /// Signs download URLs when `THUMBQ_SIGNED_URLS` is on.
    pub signer: Option<UrlSigner>,
    /// Work a request leaves running after its answer (rebuilding a lost record); the server waits for it on
    /// shutdown, so none of it writes after the API has stopped.
    pub background: tokio_util::task::TaskTracker,
}

impl AppState {
    /// Builds the state; nothing connects yet, so the API starts (and reports not ready) while services are down.
    pub fn new(settings: Settings, store: SharedFileStore, shutdown: CancellationToken) -> anyhow::Result<Self> {
        use anyhow::Context;
        let states = StateStore::new(&settings.redis).context("failed to set up the Redis pool")?;
        let topology = Topology::new(&settings.amqp, &settings.retry);
        let publisher = PublisherLink::start(settings.amqp.clone(), topology, "thumbq-api");
        let events = TaskEvents::start(&settings.redis, states.keys().events(), shutdown.clone());
        let metrics = thumbq_common::telemetry_metrics::install();
        thumbq_common::telemetry_metrics::zero_task_counters(&settings.amqp.queue);
        Ok(Self {
            store,
            states,
            publisher: Arc::new(publisher),
            events,
            signer: settings.access.signed_urls.clone().map(UrlSigner::new),
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
        let base = &self.settings.http.public_url;
        match &self.signer {
            Some(signer) => format!("{base}/thumbnails/{name}?{}", signer.query(name, chrono::Utc::now())),
            None => format!("{base}/thumbnails/{name}"),
        }
    }

    /// A record as the API answers it: with the URLs of its thumbnail and renditions.
    pub fn present(&self, mut record: TaskRecord) -> TaskRecord {
        for rendition in &mut record.renditions {
            rendition.url = Some(self.thumbnail_url(&rendition.file));
        }
        TaskRecord { url: Some(self.thumbnail_url(&record.name)), ..record }
    }
}
