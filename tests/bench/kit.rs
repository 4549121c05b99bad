//! What the benches that run the whole stack share, declared once: each bench is its own crate, so each names this
//! module and re-exports its parts at its root, where they find one another (`crate::stack`, `crate::support::wait`).
#![allow(dead_code, reason = "each bench uses a part; the tests use the rest of the support code")]

#[path = "../support/broker_node.rs"]
pub mod broker_node;
#[path = "corpus.rs"]
pub mod corpus;
#[path = "../support/daemon.rs"]
pub mod daemon;
#[path = "load.rs"]
pub mod load;
#[path = "measure.rs"]
pub mod measure;
#[path = "../support/s3.rs"]
pub mod s3;
#[path = "../support/services.rs"]
pub mod services;
#[path = "stack.rs"]
pub mod stack;
#[path = "../support/wait.rs"]
pub mod wait;
