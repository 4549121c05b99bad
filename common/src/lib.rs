//! Code shared by thumbq's API and worker: the task message and its state, the stores, the broker topology and the
//! settings. Nothing here knows about HTTP or image processing.

pub mod broker;
pub mod file_store;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod image_probe;
pub mod reconnect;
pub mod settings;
pub mod shutdown;
pub mod state_store;
pub mod task;
pub mod telemetry;
pub mod telemetry_metrics;

pub use settings::Settings;
pub use task::{TaskEnvelope, TaskId, TaskRecord, TaskStatus};
