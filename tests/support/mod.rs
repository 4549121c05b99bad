//! What the tests share: `spawn_app()` and the typed `TestApp` helpers, the one deadline loop (`wait`), tests run on
//! each store (`on_each_store!`), the shared services, processes, a TCP proxy to cut links, a private RabbitMQ node,
//! an S3 server, and a store that fails on demand.

pub mod app;
pub mod broker_node;
pub mod browser;
pub mod cleanup;
pub mod daemon;
pub mod each_store;
pub mod faulty_store;
pub mod library;
pub mod origin;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod queues;
pub mod receiver;
pub mod redis_cluster;
pub mod redis_failover;
pub mod requests;
pub mod s3;
pub mod services;
pub mod tools;
pub mod wait;
pub mod watcher;

pub use app::{
    Backend, TestApp, break_folder, spawn_api, spawn_api_configured, spawn_api_with_store, spawn_app,
    spawn_app_with_store, test_settings,
};
pub use cleanup::ScratchRedis;
pub(crate) use each_store::on_each_store;
pub use wait::{DEADLINE, eventually};
