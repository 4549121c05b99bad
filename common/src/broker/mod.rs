//! RabbitMQ: the queue topology thumbq declares (`topology.rs`), connecting (`connection.rs`), and publishing with
//! publisher confirms (`publisher.rs`); here, what they share: the error type, the dead-letter headers and
//! [`bounded`] calls.
//!
//! Topology, all quorum queues (replicated, always persistent):
//! - `<queue>`: the work queue. `x-delivery-limit` dead-letters a message redelivered too often (a task that crashes
//!   its worker every time), at least once (`x-dead-letter-strategy`), into `<queue>.dead`.
//! - `<queue>.delay.<ms>`: one per backoff delay. A retry is published here; when its TTL ends RabbitMQ moves it back
//!   to the work queue. One queue per delay, because messages expire only at a queue's head: a long delay must not
//!   hold up a short one. No worker holds a message while it waits (Celery's countdowns do, and trip
//!   `consumer_timeout`).
//! - `<queue>.dead`: messages that will never succeed, with the reason in their headers.
//! - With `THUMBQ_WORK_QUEUES` = N > 1, N-1 more lanes like it, `<queue>.1` ... `<queue>.<N-1>` with their own delay
//!   and dead-letter queues, whose leaders RabbitMQ places on the node leading the fewest
//!   (`x-queue-leader-locator: balanced`): a task goes to the lane its id picks ([`Topology::lane_of`]), and so do
//!   its retries and its dead letter; workers consume every lane's work queue.
//! - `<queue>.webhooks`, `<queue>.webhooks.delay.<ms>`, `<queue>.webhooks.dead`: the same lane for completion
//!   webhooks, with the same delays, so a slow receiver never holds up a thumbnail.
//! - `<queue>.bulk`, `<queue>.bulk.delay.<ms>`, `<queue>.bulk.dead`: the same lane for bulk jobs' items, let in a
//!   window at a time by the job pump and consumed beside the work queue, so an upload never waits behind them.

use std::time::Duration;

use lapin::types::{AMQPValue, LongString};

mod connection;
mod link;
mod publisher;
mod topology;

pub use connection::connect;
pub use link::PublisherLink;
pub use publisher::Publisher;
pub use topology::{DelayQueue, Topology};

/// Header naming why a message was dead-lettered by a worker.
pub const REASON_HEADER: &str = "x-thumbq-reason";
/// Header carrying the last error of a dead-lettered message.
pub const ERROR_HEADER: &str = "x-thumbq-error";
/// Header carrying the stable code of a dead-lettered task's last error, the one its record has.
pub const ERROR_CODE_HEADER: &str = "x-thumbq-error-code";

/// RabbitMQ failures; all are transient from the caller's point of view.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker could not be reached, or the connection or channel failed.
    #[error("rabbitmq is unavailable: {0}")]
    Unavailable(String),
    /// The broker did not confirm a publish (no answer in time, or no queue took it).
    #[error("rabbitmq did not confirm the message: {0}")]
    NotConfirmed(String),
    /// The queue refused the message: it holds its maximum (`THUMBQ_MAX_QUEUE_DEPTH`).
    #[error("queue {0} is full")]
    QueueFull(String),
}

impl From<lapin::Error> for BrokerError {
    fn from(e: lapin::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Runs one broker call within `timeout`: no call to RabbitMQ may hang, whatever the broker does.
pub async fn bounded<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = Result<T, lapin::Error>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| BrokerError::Unavailable(format!("{what}: no answer within {timeout:?}")))?
        .map_err(BrokerError::from)
}

/// A string argument or header value.
fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}
