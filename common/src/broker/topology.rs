//! The names and arguments of thumbq's queues (the layout is in the [parent module](super)), and declaring them.

use std::{sync::Arc, time::Duration};

use lapin::{
    Channel,
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable, ShortString},
};

use super::{BrokerError, long_string};
use crate::settings::{AmqpSettings, RetrySettings};

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
        Self { webhooks: Some(webhooks), bulk: Some(Arc::new(bulk)), ..tasks }
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
            delivery_limit: amqp.delivery_limit,
            max_depth,
            group_size: amqp.quorum_group_size,
        }
    }

    /// Every queue's name, the other lanes' included.
    pub fn queue_names(&self) -> Vec<&str> {
        self.lanes().into_iter().flat_map(Self::own_names).collect()
    }

    /// This lane, then the webhooks' and the bulk jobs' (each once: the bulk lane shares the webhooks' lane).
    fn lanes(&self) -> Vec<&Self> {
        std::iter::once(self).chain(self.webhooks.as_deref()).chain(self.bulk.as_deref()).collect()
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
