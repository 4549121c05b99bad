//! RabbitMQ as a test sees it: raw publishes, consumer counts, the dead-letter queue.

use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions},
};
use thumbq_common::{broker, settings::AmqpSettings};

use crate::support::TestApp;

/// A header of a message as text (empty when missing).
pub fn header_text(headers: &lapin::types::FieldTable, name: &str) -> String {
    match headers.inner().get(name) {
        Some(lapin::types::AMQPValue::LongString(text)) => text.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// A passive declare of `queue`: its counts without creating it, `None` when it does not exist.
pub async fn passive_declare(amqp: &AmqpSettings, queue: &str) -> Option<lapin::Queue> {
    let connection = broker::connect(amqp, "thumbq-test").await.expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let queue = channel.queue_declare(queue.into(), passive, Default::default()).await;
    let _ = connection.close(200, "done".into()).await;
    queue.ok()
}

impl TestApp {
    /// Consumers on the work queue (0 while it does not exist yet).
    pub async fn consumers(&self) -> u32 {
        self.passive_declare(&self.topology.work).await.map_or(0, |q| q.consumer_count())
    }

    /// Messages ready in `queue` (0 while it does not exist yet).
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        self.passive_declare(queue).await.map_or(0, |q| q.message_count())
    }

    async fn passive_declare(&self, queue: &str) -> Option<lapin::Queue> {
        passive_declare(&self.settings.amqp, queue).await
    }

    /// Publishes a raw, persistent message to the work queue, as a duplicate delivery or a poison message would be.
    pub async fn publish_raw(&self, body: &[u8], message_id: Option<&str>) {
        let connection = broker::connect(&self.settings.amqp, "thumbq-test").await.expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        self.topology.declare(&channel).await.expect("topology");
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        channel
            .basic_publish(
                "".into(),
                self.topology.work.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("published");
        connection.close(200, "done".into()).await.expect("closed");
    }
    /// Empties the work queue (messages published by uploads that a test wants to replace).
    pub async fn purge_work_queue(&self) {
        let connection = broker::connect(&self.settings.amqp, "thumbq-test").await.expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        channel.queue_purge(self.topology.work.as_str().into(), Default::default()).await.expect("purged");
        let _ = connection.close(200, "done".into()).await;
    }
    /// Moves every message of the work queues into their dead-letter queues, as RabbitMQ does with a task that
    /// crashed its workers up to the delivery limit (its record left unfinished); returns how many.
    pub async fn dead_letter_work_queue(&self) -> usize {
        let connection = broker::connect(&self.settings.amqp, "thumbq-test").await.expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        let mut moved = 0;
        for lane in self.topology.work_lanes() {
            while let Some(message) = channel
                .basic_get(lane.work.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .expect("basic.get")
            {
                let properties = BasicProperties::default().with_delivery_mode(2);
                let dead = lane.dead.as_str().into();
                let publish =
                    channel.basic_publish("".into(), dead, BasicPublishOptions::default(), &message.data, properties);
                publish.await.expect("published").await.expect("confirmed");
                message.delivery.ack(Default::default()).await.expect("acked");
                moved += 1;
            }
        }
        let _ = connection.close(200, "done".into()).await;
        moved
    }
    /// Takes every message out of the dead-letter queue: body and headers.
    pub async fn drain_dead_letters(&self) -> Vec<(Vec<u8>, lapin::types::FieldTable)> {
        self.dead_letters(true).await
    }
    /// Reads every message of the dead-letter queue and leaves them there.
    pub async fn peek_dead_letters(&self) -> Vec<(Vec<u8>, lapin::types::FieldTable)> {
        self.dead_letters(false).await
    }
    async fn dead_letters(&self, take: bool) -> Vec<(Vec<u8>, lapin::types::FieldTable)> {
        let connection = broker::connect(&self.settings.amqp, "thumbq-test").await.expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        let mut letters = Vec::new();
        // Without acks, gotten messages stay on this channel and return to the queue when it closes.
        while let Some(message) = channel
            .basic_get(self.topology.dead.as_str().into(), BasicGetOptions { no_ack: take })
            .await
            .expect("basic.get")
        {
            let headers = message.delivery.properties.headers().clone().unwrap_or_default();
            letters.push((message.delivery.data.clone(), headers));
        }
        let _ = connection.close(200, "done".into()).await;
        letters
    }
}
