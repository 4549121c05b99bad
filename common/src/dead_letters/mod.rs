//! The operator's actions on the dead-letter queue, shared by the API's routes and `thumbq-worker
//! replay-dead-letters`: replay (every dead-lettered task, or one, back to the work queue as a fresh first attempt,
//! its record back to PENDING) and purge (discard them, their records kept as they ended). Each action is written
//! into the task's record.
//!
//! Messages are taken with `basic.get` on a channel of their own. One that is passed over (poison, or not the task
//! asked for) stays unacknowledged until that channel closes, so the next get moves on and it returns to the queue
//! afterwards; the dead-letter queue has no delivery limit, so this costs it nothing. A replayed task is published
//! with a confirm before its dead letter is acked: a crash half-way loses nothing (it may replay a task twice, which
//! is harmless).
//!
//! A replay never brings back a task that was erased (its record is gone, or expired) or cancelled (REVOKED): the
//! record's return to PENDING is conditional inside Redis, so a concurrent erase or cancel cannot slip in between
//! the check and the reset. Such a dead letter is skipped and dropped (acked), and counted in [`Handled::skipped`].
//!
//! Every action reads the tasks' dead-letter queues (one per work queue, `THUMBQ_WORK_QUEUES`, and those of work queues
//! a larger number made), then the bulk lane's (`<queue>.bulk.dead`). The worker never
//! dead-letters a job's item itself (its job's `retry-failed` makes failures again), but RabbitMQ does when an item
//! crashed its worker `THUMBQ_DELIVERY_LIMIT` times, and that item's job cannot end until it is replayed: a replay
//! puts it back in the bulk lane, so it still never runs in front of interactive uploads.

mod listing;

use std::sync::Arc;

use lapin::{
    Channel, Connection,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions},
};
use tracing::{info, warn};

pub use listing::{DeadLetter, DeadLetterPage};

use crate::{
    Settings, TaskEnvelope, TaskId,
    broker::{self, BrokerError, Publisher, Topology, bounded},
    state_store::{StateError, StateStore, Update},
};

/// Which dead letters an action takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every task, or the first `limit`.
    All {
        /// At most this many tasks, replayed, purged or skipped; `None` for all.
        limit: Option<usize>,
    },
    /// Only this task's.
    Task(TaskId),
}

/// What to do with the selected dead letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Back to the work queue as a fresh first attempt, the record back to PENDING; skipped (the dead letter
    /// dropped) for a task erased or cancelled.
    Replay,
    /// Discarded (with every dead letter selected, the messages that are not tasks too); the record stays as it
    /// ended.
    Purge,
}

/// What an action did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Handled {
    /// Tasks replayed or purged.
    pub tasks: usize,
    /// Messages left in the dead-letter queue: not tasks (poison) when replaying, or not the task asked for.
    pub kept: usize,
    /// Messages that are not tasks (poison), discarded by a purge of every dead letter.
    pub discarded: usize,
    /// Dead letters of tasks that were erased (or expired) or cancelled, dropped by a replay without bringing the
    /// task back.
    pub skipped: usize,
}

/// Why an action stopped; what was done so far stays done.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// RabbitMQ failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Redis failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A connection to the dead-letter queue for one action; [`DeadLetters::close`] returns what was passed over.
pub struct DeadLetters {
    connection: Connection,
    channel: Channel,
    publisher: Publisher,
    topology: Arc<Topology>,
    /// The dead-letter queues of work queues a larger `THUMBQ_WORK_QUEUES` made ([`Topology::leftovers`]).
    leftovers: Vec<String>,
    timeout: std::time::Duration,
}

impl DeadLetters {
    /// Connects (as `name` in RabbitMQ's views) and declares the topology, each step within the AMQP timeout.
    pub async fn open(settings: &Settings, name: &str) -> Result<Self, DeadLetterError> {
        let topology = Arc::new(Topology::new(&settings.amqp, &settings.retry));
        let timeout = settings.amqp.timeout;
        let connection = broker::connect(&settings.amqp, name).await?;
        let publisher = Publisher::open(&connection, topology.clone(), timeout).await?;
        publisher.declare_topology().await?;
        let channel = bounded(timeout, "opening a channel", connection.create_channel()).await?;
        let leftovers =
            topology.leftovers(&connection, timeout).await.into_iter().map(|q| format!("{q}.dead")).collect();
        Ok(Self { connection, channel, publisher, topology, leftovers, timeout })
    }

    /// Replays or purges the selected dead letters; `by` is the API key that asked, recorded with the action.
    pub async fn handle(
        &self,
        states: &StateStore,
        treatment: Treatment,
        selection: Selection,
        by: Option<&str>,
    ) -> Result<Handled, DeadLetterError> {
        let (mut done, mut lane) = (Handled::default(), 0);
        let purge = treatment == Treatment::Purge;
        while let Some((envelope, message)) = self.next(selection, purge, &mut lane, &mut done).await? {
            let id = envelope.id;
            match treatment {
                Treatment::Replay => {
                    let fresh = TaskEnvelope { attempt: 1, ..envelope };
                    match states.requeue(&fresh, by).await? {
                        Update::Applied if fresh.job.is_some() => self.publisher.publish_job_item(&fresh).await?,
                        Update::Applied => self.publisher.publish_task(&fresh).await?,
                        refused => {
                            // Erased or cancelled: the dead letter goes, the task stays as its owner left it.
                            self.ack(message).await?;
                            info!(task_id = %id, ?refused, "dead letter of an erased or cancelled task dropped");
                            done.skipped += 1;
                            continue;
                        }
                    }
                }
                Treatment::Purge => {
                    states.record_action(id, "purged", by).await?;
                }
            }
            self.ack(message).await?;
            info!(task_id = %id, ?treatment, "dead letter handled");
            done.tasks += 1;
        }
        Ok(done)
    }

    /// The dead-letter queues an action reads, in order: the tasks' lanes' (every work queue's), then the bulk
    /// lane's.
    fn queues(&self) -> impl Iterator<Item = &str> {
        let tasks = self.topology.work_lanes().map(|lane| lane.dead.as_str());
        tasks
            .chain(self.leftovers.iter().map(String::as_str))
            .chain(self.topology.bulk.as_deref().map(|b| b.dead.as_str()))
    }

    /// The next dead letter of the queues from the `lane`-th on (moving `lane` past those found empty), left
    /// unacknowledged; `None` when every queue is done.
    async fn get(&self, lane: &mut usize) -> Result<Option<BasicGetMessage>, BrokerError> {
        while let Some(queue) = self.queues().nth(*lane) {
            let get = self.channel.basic_get(queue.into(), BasicGetOptions { no_ack: false });
            match bounded(self.timeout, "reading a dead letter", get).await? {
                Some(message) => return Ok(Some(message)),
                None => *lane += 1,
            }
        }
        Ok(None)
    }

    /// The next selected dead letter that is a task, or `None` when the queues have no more or the selection is
    /// done. Passes over (counting them in `done`) the others; with `discard_poison` and every dead letter selected,
    /// acks those that are not tasks.
    async fn next(
        &self,
        selection: Selection,
        discard_poison: bool,
        lane: &mut usize,
        done: &mut Handled,
    ) -> Result<Option<(TaskEnvelope, BasicGetMessage)>, DeadLetterError> {
        let every = match selection {
            Selection::All { limit } if limit.is_some_and(|limit| done.tasks + done.skipped >= limit) => {
                return Ok(None);
            }
            // One task's: after one is handled; skipped ones go on, to drop any duplicate of a gone task too.
            Selection::Task(_) if done.tasks == 1 => return Ok(None),
            Selection::All { .. } => true,
            Selection::Task(_) => false,
        };
        loop {
            let Some(message) = self.get(lane).await? else { return Ok(None) };
            match TaskEnvelope::from_json(&message.delivery.data) {
                Ok(envelope) if every || selection == Selection::Task(envelope.id) => {
                    return Ok(Some((envelope, message)));
                }
                Err(_) if every && discard_poison => {
                    self.ack(message).await?;
                    done.discarded += 1;
                }
                _ => done.kept += 1,
            }
        }
    }

    async fn ack(&self, message: BasicGetMessage) -> Result<(), BrokerError> {
        bounded(self.timeout, "acking a dead letter", message.delivery.ack(BasicAckOptions::default())).await.map(drop)
    }

    /// Closes the connection: the messages passed over return to the queue.
    pub async fn close(self) {
        let closing = self.connection.close(200, "dead-letter action done".into());
        if let Err(e) = tokio::time::timeout(self.timeout, closing).await.unwrap_or(Ok(())) {
            warn!(error = %e, "closing the dead-letter connection failed");
        }
    }
}
