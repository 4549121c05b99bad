//! thumbq's end-to-end tests: the real API and workers against real RabbitMQ and Redis, one binary, one file per
//! feature. Every test gets its own queues, Redis key prefix, store folder and port (see `helpers`).

// Panicking on the unexpected is how a test fails.
#![allow(clippy::unwrap_used)]

mod broker_node;
mod dashboard;
mod delivery;
mod deploy;
mod errors;
mod faults;
mod health;
mod helpers;
mod isolation;
mod metrics;
mod openapi;
mod process;
mod proxy;
mod queues;
mod registry;
mod retry;
mod services;
mod state_store;
mod tasks;
mod thumbnails;
mod watcher;
