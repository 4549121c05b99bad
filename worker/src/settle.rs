//! How a delivery ends on its channel: [`Settlement`] is what the task's or the webhook's handler decided, and the
//! consumer that owns the channel applies it. Handlers never ack themselves, so they need nothing of the consumer.

use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use tracing::warn;

/// What to tell RabbitMQ about a handled delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Done with: the outcome is durable (recorded, or handed on with a confirm).
    Ack,
    /// Could not be settled: back to its queue, so RabbitMQ delivers it again.
    Requeue,
    /// Refused for good: RabbitMQ dead-letters it itself (the queue's `x-dead-letter-exchange`).
    Reject,
}

impl Settlement {
    /// Acks or nacks `delivery`; a failure is logged (the channel is gone, and RabbitMQ delivers the message again).
    pub async fn apply(self, delivery: &Delivery) {
        match self {
            Self::Ack => {
                if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                    // The channel is gone; RabbitMQ redelivers the message and the duplicate is harmless.
                    warn!(error = %e, "ack failed");
                }
            }
            Self::Requeue | Self::Reject => {
                let requeue = self == Self::Requeue;
                if let Err(e) = delivery.nack(BasicNackOptions { requeue, ..Default::default() }).await {
                    warn!(error = %e, "nack failed");
                }
            }
        }
    }
}
