//! Code shared by thumbq's API and worker: the task's wire types and state machine, the stores (Redis records,
//! files), the broker topology and connection, the header probe, settings, telemetry. Nothing here knows about
//! HTTP routes or how thumbnails are made (the probe reads headers only).

pub mod access;
pub mod broker;
pub mod dead_letters;
pub mod file_store;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod image_probe;
pub mod links;
pub mod reconnect;
pub mod settings;
pub mod shutdown;
pub mod state_store;
pub mod task;
pub mod telemetry;
pub mod telemetry_metrics;
pub mod webhook;

pub use settings::Settings;
pub use task::{TaskEnvelope, TaskId, TaskRecord, TaskStatus};
