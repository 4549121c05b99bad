//! Code shared by thumbq's API and worker: the task's wire types and state machine, the stores (Redis records,
//! files), the broker topology and connection, the header probe, settings, telemetry. Nothing here serves HTTP or
//! knows how thumbnails are made (the probe reads headers only). One piece of the API's URL layout lives here on
//! purpose: [`links`] builds the thumbnail download URLs (`/thumbnails/<name>`) that the API answers with and the
//! worker's webhooks carry, so both processes hand out the same URLs.

pub mod address_guard;
pub mod api_key;
pub mod broker;
pub mod dead_letters;
pub mod file_store;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod image_probe;
pub mod job;
pub mod links;
pub mod logging;
pub mod metrics;
pub mod reconnect;
pub mod settings;
pub mod shutdown;
pub mod state_store;
pub mod task;
pub mod telemetry;
pub mod webhook;

pub use settings::Settings;
pub use task::{TaskEnvelope, TaskId, TaskRecord, TaskStatus};
