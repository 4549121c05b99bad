//! thumbq's end-to-end tests: the real API and workers against real RabbitMQ and Redis, one binary, one file per
//! feature. Every test gets its own queues, Redis key prefix, store folder and port (see `support`).

// Panicking on the unexpected is how a test fails.
#![allow(clippy::unwrap_used)]

mod abuse;
mod access;
mod animation;
mod backpressure;
mod cli;
mod cluster;
mod colour;
mod connections;
mod console;
mod corpus;
mod dashboard;
mod dedupe;
mod deletion;
mod delivery;
mod deploy;
mod docs;
mod error_codes;
mod errors;
mod failover;
mod failure_records;
mod faults;
mod headers;
mod health;
mod idempotency;
mod imports;
mod isolation;
mod job_dead_letters;
mod jobs;
mod kept_originals;
mod licences;
mod memory;
mod metrics;
mod monitoring;
mod negotiation;
mod object_store;
mod openapi;
mod ownership;
mod pdf_renderer;
mod redis_cluster;
mod renditions;
mod rerender;
mod retry;
mod schema_fuzz;
mod send_image;
mod signing;
mod state_store;
mod streaming;
mod support;
mod sweep;
mod tasks;
mod thumbnails;
mod traces;
mod webhooks;
mod work_limits;
mod work_queues;
mod workers;
