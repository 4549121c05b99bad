//! RabbitMQ: the queue topology thumbq declares, connecting, and publishing with publisher confirms.
//!
//! Topology, all quorum queues (replicated, always persistent):
//! - `<queue>`: the work queue. `x-delivery-limit` dead-letters a message redelivered too often (a task that crashes
//!   its worker every time), at least once (`x-dead-letter-strategy`), into `<queue>.dead`.
//! - `<queue>.delay.<ms>`: one per backoff delay. A retry is published here; when its TTL ends RabbitMQ moves it back
//!   to the work queue. One queue per delay, because messages expire only at a queue's head: a long delay must not
//!   hold up a short one. No worker holds a message while it waits (Celery's countdowns do, and trip
//!   `consumer_timeout`).
//! - `<queue>.dead`: messages that will never succeed, with the reason in their headers.
//! - `<queue>.webhooks`, `<queue>.webhooks.delay.<ms>`, `<queue>.webhooks.dead`: the same lane for completion
//!   webhooks, with the same delays, so a slow receiver never holds up a thumbnail.

use std::{sync::Arc, time::Duration};

use crate::{
    settings::{AmqpSettings, RetrySettings},
    task::TaskEnvelope,
    webhook::WebhookMessage,
};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

mod link;

pub use link::PublisherLink;

/// Header naming why a message was dead-lettered by a worker.
pub const REASON_HEADER: &str = "x-thumbq-reason";
/// Header carrying the last error of a dead-lettered message.
pub const ERROR_HEADER: &str = "x-thumbq-error";

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
    delivery_limit: u32,
    max_depth: u32,
    group_size: u32,
}

impl Topology {
    /// The topology for these settings: the tasks' lane, and the webhooks' lane beside it.
    pub fn new(amqp: &AmqpSettings, retry: &RetrySettings) -> Self {
        // Webhooks wait in RabbitMQ while a receiver is down: no depth limit, so a task's end never fails on them.
        let webhooks = Self::lane(&format!("{}.webhooks", amqp.queue), amqp, retry, 0);
        Self { webhooks: Some(Arc::new(webhooks)), ..Self::lane(&amqp.queue, amqp, retry, amqp.max_queue_depth) }
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
            delivery_limit: amqp.delivery_limit,
            max_depth,
            group_size: amqp.quorum_group_size,
        }
    }

    /// Every queue's name, the webhooks' lane's included.
    pub fn queue_names(&self) -> Vec<&str> {
        let mut names = vec![self.work.as_str(), self.dead.as_str()];
        names.extend(self.delays.iter().map(|d| d.name.as_str()));
        names.extend(self.webhooks.iter().flat_map(|lane| lane.queue_names()));
        names
    }

    /// The delay queue for a wait of `delay`: the shortest one at least that long, else the longest.
    pub fn delay_queue(&self, delay: Duration) -> Option<&DelayQueue> {
        self.delays.iter().find(|q| q.delay >= delay).or(self.delays.last())
    }

    /// Declares every queue; idempotent, as long as the arguments have not changed.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
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
        if let Some(webhooks) = &self.webhooks {
            Box::pin(webhooks.declare(channel)).await?;
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

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
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

/// Opens a connection, named `name` in RabbitMQ's management views, to the first node of `THUMBQ_AMQP_URL` that
/// answers, each within the configured timeout. The nodes are tried in a fresh random order on every call, so
/// processes spread over a cluster's nodes, and a reconnect after a node's loss lands on any survivor.
pub async fn connect(settings: &AmqpSettings, name: &str) -> Result<Connection, BrokerError> {
    let mut nodes = settings.nodes();
    fastrand::shuffle(&mut nodes);
    let mut failures = Vec::new();
    for url in nodes {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        match tokio::time::timeout(settings.timeout, Connection::connect(url, properties)).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(e)) => failures.push(format!("{}: {e}", redacted(url))),
            Err(_) => failures.push(format!("{}: no connection within {:?}", redacted(url), settings.timeout)),
        }
    }
    Err(BrokerError::Unavailable(failures.join("; ")))
}

/// A node URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

/// A channel in confirm mode: every publish is persistent and waits for the broker's ack.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    topology: Arc<Topology>,
    timeout: Duration,
}

impl Publisher {
    /// Opens a confirm-mode channel on `connection`, each step within `timeout`.
    pub async fn open(
        connection: &Connection,
        topology: Arc<Topology>,
        timeout: Duration,
    ) -> Result<Self, BrokerError> {
        let channel = bounded(timeout, "opening a channel", connection.create_channel()).await?;
        bounded(timeout, "confirm mode", channel.confirm_select(ConfirmSelectOptions::default())).await?;
        Ok(Self { channel, topology, timeout })
    }

    /// Declares the topology on this publisher's channel, within its timeout.
    pub async fn declare_topology(&self) -> Result<(), BrokerError> {
        tokio::time::timeout(self.timeout, self.topology.declare(&self.channel))
            .await
            .map_err(|_| BrokerError::Unavailable(format!("declaring queues: no answer within {:?}", self.timeout)))?
    }

    /// Whether the channel can still publish.
    pub fn is_open(&self) -> bool {
        self.channel.status().connected()
    }

    /// The topology this publisher sends to.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Messages waiting in each of the topology's queues (passive declares: a cheap depth probe), each within the
    /// timeout.
    pub async fn queue_depths(&self) -> Result<Vec<(String, u32)>, BrokerError> {
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let mut depths = Vec::new();
        for name in self.topology.queue_names() {
            let declare = self.channel.queue_declare(name.into(), passive, FieldTable::default());
            let queue = bounded(self.timeout, "reading a queue depth", declare).await?;
            depths.push((name.to_owned(), queue.message_count()));
        }
        Ok(depths)
    }

    /// Publishes a task to the work queue.
    pub async fn publish_task(&self, envelope: &TaskEnvelope) -> Result<(), BrokerError> {
        self.publish(&self.topology.work, &envelope.to_json(), task_properties(envelope)).await
    }

    /// Publishes a task's next attempt to wait `delay` in a delay queue. The per-message expiration lets jittered
    /// delays share a tier; it is never longer than the tier's TTL.
    pub async fn publish_delayed(&self, envelope: &TaskEnvelope, delay: Duration) -> Result<(), BrokerError> {
        let queue = self
            .topology
            .delay_queue(delay)
            .ok_or_else(|| BrokerError::Unavailable("no delay queues declared".into()))?;
        let expiration = delay.min(queue.delay).as_millis().to_string();
        let properties = task_properties(envelope).with_expiration(expiration.into());
        self.publish(&queue.name, &envelope.to_json(), properties).await
    }

    /// Publishes a webhook delivery to the webhooks' lane: its work queue, or after `delay` through its delay
    /// queues.
    pub async fn publish_webhook(&self, message: &WebhookMessage, delay: Option<Duration>) -> Result<(), BrokerError> {
        let lane = self.webhooks_lane();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message.id.to_string().into());
        let Some(delay) = delay else { return self.publish(&lane.work, &message.to_json(), properties).await };
        let queue =
            lane.delay_queue(delay).ok_or_else(|| BrokerError::Unavailable("no delay queues declared".into()))?;
        let properties = properties.with_expiration(delay.min(queue.delay).as_millis().to_string().into());
        self.publish(&queue.name, &message.to_json(), properties).await
    }

    /// The webhooks' lane of this publisher's topology.
    fn webhooks_lane(&self) -> &Topology {
        self.topology.webhooks.as_deref().unwrap_or(&self.topology)
    }

    /// Publishes a message body to the dead-letter queue with the reason and error in its headers.
    pub async fn publish_dead(
        &self,
        body: &[u8],
        message_id: Option<&str>,
        reason: &str,
        error: &str,
    ) -> Result<(), BrokerError> {
        self.dead_letter(&self.topology.dead, body, message_id, reason, error).await
    }

    /// Publishes a webhook message that will not be delivered to the webhooks' dead-letter queue.
    pub async fn publish_webhook_dead(
        &self,
        message: &WebhookMessage,
        reason: &str,
        error: &str,
    ) -> Result<(), BrokerError> {
        let id = message.id.to_string();
        self.dead_letter(&self.webhooks_lane().dead, &message.to_json(), Some(&id), reason, error).await
    }

    async fn dead_letter(
        &self,
        queue: &str,
        body: &[u8],
        message_id: Option<&str>,
        reason: &str,
        error: &str,
    ) -> Result<(), BrokerError> {
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), long_string(reason));
        headers.insert(ERROR_HEADER.into(), long_string(error));
        let mut properties = BasicProperties::default().with_delivery_mode(2).with_headers(headers);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        self.publish(queue, body, properties).await
    }

    async fn publish(&self, queue: &str, body: &[u8], properties: BasicProperties) -> Result<(), BrokerError> {
        let confirm = async {
            let pending = self
                .channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    body,
                    properties,
                )
                .await?;
            pending.await.map_err(BrokerError::from)
        };
        let confirmation = tokio::time::timeout(self.timeout, confirm)
            .await
            .map_err(|_| BrokerError::NotConfirmed(format!("no confirm within {:?}", self.timeout)))??;
        if confirmation.is_nack() {
            return Err(self.why_nacked(queue).await);
        }
        // A mandatory message that no queue took comes back as an ack with the message attached.
        if !confirmation.is_ack() || confirmation.take_message().is_some() {
            return Err(BrokerError::NotConfirmed(format!("queue {queue} refused the message")));
        }
        Ok(())
    }
}

impl Publisher {
    /// Tells the two reasons a quorum queue nacks apart. At its `x-max-length` (reject-publish) the queue is full:
    /// a `503` that says so. Otherwise the queue had no leader (its node died and the election is still on, or this
    /// channel's queue client still points at the dead leader: RabbitMQ 3.10 can keep nacking on such a channel after
    /// a new leader is up). The channel is closed so the link opens a fresh one, which finds the new leader.
    async fn why_nacked(&self, queue: &str) -> BrokerError {
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let declare = self.channel.queue_declare(queue.into(), passive, FieldTable::default());
        let depth = bounded(self.timeout, "reading a queue depth", declare).await.map(|q| q.message_count());
        let limit = if queue == self.topology.work { self.topology.max_depth } else { 0 };
        if let Ok(depth) = depth
            && limit > 0
            && depth >= limit
        {
            return BrokerError::QueueFull(queue.to_owned());
        }
        let closing = self.channel.close(200, "a publish was nacked: reopening".into());
        let _ = tokio::time::timeout(self.timeout, closing).await;
        BrokerError::Unavailable(format!(
            "queue {queue} refused the message without being full (no leader yet after a node failure?)"
        ))
    }
}

fn task_properties(envelope: &TaskEnvelope) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(envelope.id.to_string().into())
        .with_timestamp(u64::try_from(envelope.created_at.timestamp()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_in_messages_lose_their_passwords() {
        assert_eq!(redacted("amqp://thumbq:s3cret@mq-1:5672/%2f"), "amqp://mq-1:5672/%2f");
        assert_eq!(redacted("amqp://mq-1:5672/%2f"), "amqp://mq-1:5672/%2f");
    }

    #[tokio::test]
    async fn connecting_tries_every_node_and_names_each_failure() {
        // Nothing listens on ports 1 and 2 of loopback: both refuse at once.
        let settings = AmqpSettings {
            url: "amqp://u:p@127.0.0.1:1/%2f,amqp://u:p@127.0.0.1:2/%2f".into(),
            ..crate::Settings::default().amqp
        };
        let Err(BrokerError::Unavailable(message)) = connect(&settings, "test").await else {
            panic!("no node answers")
        };
        assert!(message.contains("127.0.0.1:1") && message.contains("127.0.0.1:2"), "{message}");
        assert!(!message.contains("u:p"), "{message}");
    }
}
