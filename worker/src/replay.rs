//! The operator's replay of dead letters (`thumbq-worker replay-dead-letters`): every dead-lettered task goes back
//! to the work queue as a fresh first attempt, its record back to PENDING. Messages that are not tasks (poison) stay
//! in the dead-letter queue.

use std::sync::Arc;

use lapin::options::{BasicAckOptions, BasicGetOptions};
use thumbq_common::{
    Settings, TaskEnvelope,
    broker::{self, BrokerError, Publisher, Topology, bounded},
    state_store::{StateError, StateStore},
};
use tracing::{info, warn};

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Tasks moved back to the work queue.
    pub tasks: usize,
    /// Messages left in the dead-letter queue because they are not tasks.
    pub kept: usize,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// RabbitMQ failed; what was replayed so far stays replayed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Redis failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl From<lapin::Error> for ReplayError {
    fn from(e: lapin::Error) -> Self {
        Self::Broker(e.into())
    }
}

/// Replays up to `limit` dead letters (all when `None`). Each is published to the work queue with a confirm before
/// it is acked in the dead-letter queue, so a crash half-way loses nothing (it may replay one task twice, which is
/// harmless).
pub async fn replay_dead_letters(settings: &Settings, limit: Option<usize>) -> Result<Replayed, ReplayError> {
    let topology = Arc::new(Topology::new(&settings.amqp, &settings.retry));
    let states = StateStore::new(&settings.redis)?;
    let connection = broker::connect(&settings.amqp, "thumbq-worker replay").await?;
    let publisher = Publisher::open(&connection, topology.clone(), settings.amqp.timeout).await?;
    publisher.declare_topology().await?;
    let channel = bounded(settings.amqp.timeout, "opening a channel", connection.create_channel()).await?;

    let mut done = Replayed::default();
    while limit.is_none_or(|limit| done.tasks < limit) {
        let get = BasicGetOptions { no_ack: false };
        let next = channel.basic_get(topology.dead.as_str().into(), get);
        let Some(message) = bounded(settings.amqp.timeout, "reading a dead letter", next).await? else { break };
        // Poison stays unacked until the channel closes, so the next get moves on and it returns to the queue.
        let Ok(envelope) = TaskEnvelope::from_json(&message.delivery.data) else {
            done.kept += 1;
            continue;
        };
        let fresh = TaskEnvelope { attempt: 1, ..envelope };
        states.requeue(&fresh).await?;
        publisher.publish_task(&fresh).await?;
        bounded(settings.amqp.timeout, "acking a dead letter", message.delivery.ack(BasicAckOptions::default()))
            .await?;
        info!(task_id = %fresh.id, "dead letter replayed");
        done.tasks += 1;
    }
    if let Err(e) = connection.close(200, "replay done".into()).await {
        warn!(error = %e, "closing the replay connection failed");
    }
    Ok(done)
}
