//! The names and arguments of thumbq's queues (the layout is in the [parent module](super)), and declaring them.

use std::{sync::Arc, time::Duration};

use lapin::{
    Channel,
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable, ShortString},
};

use super::{BrokerError, bounded, long_string};
use crate::{
    settings::{AmqpSettings, MAX_WORK_QUEUES, RetrySettings},
    task::TaskId,
};

/// One delay queue: messages wait `delay` there, then return to the work queue.
#[derive(Clone, Debug)]
pub struct DelayQueue {
    /// How long a message waits.
    pub delay: Duration,
    /// The queue's name, `<queue>.delay.<ms>`.
    pub name: String,
}

/// The names and arguments of thumbq's queues.
#[derive(Clone, Debug)]
pub struct Topology {
    /// The work queue.
    pub work: String,
    /// The dead-letter queue.
    pub dead: String,
    /// The delay queues, shortest delay first.
    pub delays: Vec<DelayQueue>,
    /// The webhooks' own lane (work, delay and dead-letter queues); `None` in that lane itself.
    pub webhooks: Option<Arc<Topology>>,
    /// The bulk jobs' own lane, whose retries stay in it; `None` in the bulk and webhooks lanes themselves.
    pub bulk: Option<Arc<Topology>>,
    /// The tasks' other work queues (`THUMBQ_WORK_QUEUES` > 1), each a lane of its own: `<queue>.1`, `<queue>.2`
    /// ...; empty in every other lane.
    pub others: Vec<Topology>,
    /// Whether the lane's queues ask RabbitMQ to put their leader on the node leading the fewest
    /// (`x-queue-leader-locator: balanced`): the added work queues' lanes. The first keeps the arguments it always
    /// had, since RabbitMQ refuses to declare a queue again with others.
    balanced: bool,
    delivery_limit: u32,
    /// The work queue's `x-max-length` (`THUMBQ_MAX_QUEUE_DEPTH`); 0: none.
    pub(super) max_depth: u32,
    group_size: u32,
}

impl Topology {
    /// The topology for these settings: the tasks' lane, and the webhooks' and bulk jobs' lanes beside it.
    pub fn new(amqp: &AmqpSettings, retry: &RetrySettings) -> Self {
        // Webhooks wait in RabbitMQ while a receiver is down: no depth limit, so a task's end never fails on them.
        let webhooks = Arc::new(Self::lane(&format!("{}.webhooks", amqp.queue), amqp, retry, 0));
        // Job items are let in a window at a time by the pump: no depth limit either. Their webhooks are the tasks'.
        let bulk =
            Self { webhooks: Some(webhooks.clone()), ..Self::lane(&format!("{}.bulk", amqp.queue), amqp, retry, 0) };
        let tasks = Self::lane(&amqp.queue, amqp, retry, amqp.max_queue_depth);
        let others = (1..amqp.work_queues)
            .map(|i| Self {
                balanced: true,
                ..Self::lane(&Self::nth_work_queue(&amqp.queue, i), amqp, retry, amqp.max_queue_depth)
            })
            .collect();
        Self { webhooks: Some(webhooks), bulk: Some(Arc::new(bulk)), others, ..tasks }
    }

    /// The name of the tasks' `i`-th work queue after the first (`<queue>.<i>`).
    fn nth_work_queue(queue: &str, i: u32) -> String {
        format!("{queue}.{i}")
    }

    fn lane(queue: &str, amqp: &AmqpSettings, retry: &RetrySettings, max_depth: u32) -> Self {
        let delays = retry
            .tiers()
            .into_iter()
            .map(|delay| DelayQueue { delay, name: format!("{queue}.delay.{}", delay.as_millis()) })
            .collect();
        Self {
            work: queue.to_owned(),
            dead: format!("{queue}.dead"),
            delays,
            webhooks: None,
            bulk: None,
            others: Vec::new(),
            balanced: false,
            delivery_limit: amqp.delivery_limit,
            max_depth,
            group_size: amqp.quorum_group_size,
        }
    }

    /// Every queue's name, the other lanes' included.
    pub fn queue_names(&self) -> Vec<&str> {
        self.lanes().into_iter().flat_map(Self::own_names).collect()
    }

    /// This lane and the other work queues' lanes, then the webhooks' and the bulk jobs' (each once: the bulk lane
    /// shares the webhooks' lane).
    fn lanes(&self) -> Vec<&Self> {
        self.work_lanes().chain(self.webhooks.as_deref()).chain(self.bulk.as_deref()).collect()
    }

    /// The tasks' work queues' lanes: this one, then the others.
    pub fn work_lanes(&self) -> impl Iterator<Item = &Self> {
        std::iter::once(self).chain(&self.others)
    }

    /// The lane of task `id`: picked by four bits of its id (not those that pick its Redis shard), the same for
    /// its every attempt, so its retries and its dead letter stay in its queue's lane.
    pub fn lane_of(&self, id: TaskId) -> &Self {
        match usize::from(id.spread() >> 4) % (1 + self.others.len()) {
            0 => self,
            i => &self.others[i - 1],
        }
    }

    /// Whether `queue` is one of the tasks' work queues (those with a depth limit).
    pub fn is_work_queue(&self, queue: &str) -> bool {
        self.work_lanes().any(|lane| lane.work == queue)
    }

    /// The work queues of a larger `THUMBQ_WORK_QUEUES` that still exist (`<queue>.<n>` on, up to the first
    /// missing or the most there can be): the workers consume them until they are empty, and dead-letter actions read their dead letters.
    /// Each is looked for with a passive declare on a channel of its own (a missing queue closes the channel).
    pub async fn leftovers(&self, connection: &lapin::Connection, timeout: std::time::Duration) -> Vec<String> {
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let mut found = Vec::new();
        for i in (1 + self.others.len() as u32)..MAX_WORK_QUEUES {
            let name = Self::nth_work_queue(&self.work, i);
            let probe = async {
                let channel = bounded(timeout, "opening a channel", connection.create_channel()).await?;
                let declared = channel.queue_declare(name.as_str().into(), passive, FieldTable::default());
                let exists = bounded(timeout, "looking for a queue", declared).await.is_ok();
                if exists {
                    let _ = bounded(timeout, "closing a channel", channel.close(200, "found".into())).await;
                }
                Ok::<_, BrokerError>(exists)
            };
            if !probe.await.unwrap_or(false) {
                break;
            }
            found.push(name);
        }
        found
    }

    /// The names of this lane's own queues.
    fn own_names(&self) -> Vec<&str> {
        let mut names = vec![self.work.as_str(), self.dead.as_str()];
        names.extend(self.delays.iter().map(|d| d.name.as_str()));
        names
    }

    /// The delay queue for a wait of `delay`: the shortest one at least that long, else the longest.
    pub fn delay_queue(&self, delay: Duration) -> Option<&DelayQueue> {
        self.delays.iter().find(|q| q.delay >= delay).or(self.delays.last())
    }

    /// Declares every queue of every lane; idempotent, as long as the arguments have not changed.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        for lane in self.lanes() {
            lane.declare_own(channel).await?;
        }
        Ok(())
    }

    /// Declares this lane's own queues.
    async fn declare_own(&self, channel: &Channel) -> Result<(), BrokerError> {
        let dead_letter_to = |target: &str| {
            let mut args = self.quorum();
            args.insert("x-dead-letter-exchange".into(), long_string(""));
            args.insert("x-dead-letter-routing-key".into(), long_string(target));
            // At-least-once dead-lettering (RabbitMQ 3.10+) needs reject-publish overflow.
            args.insert("x-dead-letter-strategy".into(), long_string("at-least-once"));
            args.insert("x-overflow".into(), long_string("reject-publish"));
            args
        };
        declare(channel, &self.dead, self.quorum()).await?;
        let mut work = dead_letter_to(&self.dead);
        work.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(self.delivery_limit)));
        if self.max_depth > 0 {
            // With the reject-publish overflow above, the broker itself refuses (nacks) a task past the limit.
            work.insert("x-max-length".into(), AMQPValue::LongLongInt(i64::from(self.max_depth)));
        }
        declare(channel, &self.work, work).await?;
        for queue in &self.delays {
            let mut args = dead_letter_to(&self.work);
            let ttl = i64::try_from(queue.delay.as_millis()).unwrap_or(i64::MAX);
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
            declare(channel, &queue.name, args).await?;
        }
        Ok(())
    }

    /// The arguments every queue starts from: a quorum queue, with `THUMBQ_QUORUM_GROUP_SIZE` members when set.
    fn quorum(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_string("quorum"));
        if self.balanced {
            args.insert("x-queue-leader-locator".into(), long_string("balanced"));
        }
        if self.group_size > 0 {
            args.insert("x-quorum-initial-group-size".into(), AMQPValue::LongLongInt(i64::from(self.group_size)));
        }
        args
    }
}

async fn declare(channel: &Channel, name: &str, args: FieldTable) -> Result<(), BrokerError> {
    let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(ShortString::from(name), options, args).await.map_err(|e| {
        let message = e.to_string();
        if message.contains("inequivalent arg") {
            // A queue declared by another version or with other settings (THUMBQ_MAX_QUEUE_DEPTH,
            // THUMBQ_DELIVERY_LIMIT): RabbitMQ cannot change a queue's arguments in place.
            BrokerError::Unavailable(format!(
                "{message}: queue {name} exists with other arguments; give every API and worker the same \
                 settings, or drain and delete the queue (rabbitmqctl delete_queue {name}) to recreate it"
            ))
        } else {
            BrokerError::from(e)
        }
    })?;
    Ok(())
}
