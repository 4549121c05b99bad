//! Publishing with publisher confirms: tasks, their delayed next attempts, webhooks and dead letters, each persistent
//! and confirmed by the broker before the call returns.

use std::{sync::Arc, time::Duration};

use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::{BrokerError, ERROR_CODE_HEADER, ERROR_HEADER, REASON_HEADER, Topology, bounded, long_string};
use crate::{
    task::{TaskEnvelope, TaskErrorCode},
    webhook::WebhookMessage,
};

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

    /// The same channel publishing into `lane` (the bulk jobs' lane, for its deliveries' retries and dead letters).
    pub fn in_lane(&self, lane: Arc<Topology>) -> Self {
        Self { topology: lane, ..self.clone() }
    }

    /// Publishes a job's item to the bulk jobs' lane.
    pub async fn publish_job_item(&self, envelope: &TaskEnvelope) -> Result<(), BrokerError> {
        let lane = self.topology.bulk.as_deref().unwrap_or(&self.topology);
        self.publish(&lane.work, &envelope.to_json(), task_properties(envelope)).await
    }

    /// Publishes a task to its work queue ([`Topology::lane_of`]).
    pub async fn publish_task(&self, envelope: &TaskEnvelope) -> Result<(), BrokerError> {
        self.publish(&self.topology.lane_of(envelope.id).work, &envelope.to_json(), task_properties(envelope)).await
    }

    /// Publishes a task's next attempt to wait `delay` in a delay queue. The per-message expiration lets jittered
    /// delays share a tier; it is never longer than the tier's TTL.
    pub async fn publish_delayed(&self, envelope: &TaskEnvelope, delay: Duration) -> Result<(), BrokerError> {
        let queue = self
            .topology
            .lane_of(envelope.id)
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
            .with_message_id(message.subject().into());
        let properties = crate::telemetry::with_trace_context(properties);
        let Some(delay) = delay else { return self.publish(&lane.work, &message.to_json(), properties).await };
        let queue =
            lane.delay_queue(delay).ok_or_else(|| BrokerError::Unavailable("no delay queues declared".into()))?;
        let properties = properties.with_expiration(delay.min(queue.delay).as_millis().to_string().into());
        self.publish(&queue.name, &message.to_json(), properties).await
    }

    /// Queues the first delivery of an ended task's webhook, if the task asked for one (`callback_url`).
    pub async fn queue_webhook_for(&self, envelope: &TaskEnvelope) -> Result<(), BrokerError> {
        let Some(url) = &envelope.callback_url else { return Ok(()) };
        self.publish_webhook(&WebhookMessage::new(envelope.id, url.clone()), None).await
    }

    /// The webhooks' lane of this publisher's topology.
    fn webhooks_lane(&self) -> &Topology {
        self.topology.webhooks.as_deref().unwrap_or(&self.topology)
    }

    /// Publishes a message body to the dead-letter queue (of the lane of the task `message_id` names) with the
    /// reason, the error and its code in its headers.
    pub async fn publish_dead(
        &self,
        body: &[u8],
        message_id: Option<&str>,
        reason: &str,
        error: &str,
        code: TaskErrorCode,
    ) -> Result<(), BrokerError> {
        let lane = match message_id.and_then(|id| id.parse().ok()) {
            Some(id) => self.topology.lane_of(id),
            None => &self.topology,
        };
        self.dead_letter(&lane.dead, body, message_id, reason, (error, Some(code))).await
    }

    /// Publishes a webhook message that will not be delivered to the webhooks' dead-letter queue.
    pub async fn publish_webhook_dead(
        &self,
        message: &WebhookMessage,
        reason: &str,
        error: &str,
    ) -> Result<(), BrokerError> {
        let id = message.subject();
        self.dead_letter(&self.webhooks_lane().dead, &message.to_json(), Some(&id), reason, (error, None)).await
    }

    async fn dead_letter(
        &self,
        queue: &str,
        body: &[u8],
        message_id: Option<&str>,
        reason: &str,
        (error, code): (&str, Option<TaskErrorCode>),
    ) -> Result<(), BrokerError> {
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), long_string(reason));
        headers.insert(ERROR_HEADER.into(), long_string(error));
        if let Some(code) = code {
            headers.insert(ERROR_CODE_HEADER.into(), long_string(code.as_str()));
        }
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

    /// Tells the two reasons a quorum queue nacks apart. At its `x-max-length` (reject-publish) the queue is full:
    /// a `503` that says so. Otherwise the queue had no leader (its node died and the election is still on, or this
    /// channel's queue client still points at the dead leader: RabbitMQ 3.10 can keep nacking on such a channel after
    /// a new leader is up). The channel is closed so the link opens a fresh one, which finds the new leader.
    async fn why_nacked(&self, queue: &str) -> BrokerError {
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let declare = self.channel.queue_declare(queue.into(), passive, FieldTable::default());
        let depth = bounded(self.timeout, "reading a queue depth", declare).await.map(|q| q.message_count());
        let limit = if self.topology.is_work_queue(queue) { self.topology.max_depth } else { 0 };
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

/// A task's message properties; its headers carry the trace context of the span publishing it (the upload's, or
/// the failed attempt's for a retry), empty with traces off.
fn task_properties(envelope: &TaskEnvelope) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(envelope.id.to_string().into())
        .with_timestamp(u64::try_from(envelope.created_at.timestamp()).unwrap_or(0));
    crate::telemetry::with_trace_context(properties)
}
