//! What the tests share: `spawn_app()` and the typed `TestApp` helpers, the shared services, processes, a TCP
//! proxy to cut links, a private RabbitMQ node, an S3 server, and a store that fails on demand.

pub mod app;
pub mod broker_node;
pub mod browser;
pub mod cleanup;
pub mod daemon;
pub mod faulty_store;
pub mod process;
pub mod proxy;
pub mod queues;
pub mod receiver;
pub mod redis_failover;
pub mod s3;
pub mod services;
pub mod tools;
pub mod watcher;

pub use app::{
    Backend, DEADLINE, TestApp, break_folder, eventually, spawn_api_on, spawn_api_with, spawn_app, spawn_app_on,
    test_settings,
};
pub use cleanup::ScratchRedis;
