//! A consuming session on one RabbitMQ connection: declare the topology, consume with manual acks and a prefetch of
//! `concurrency`, run each delivery as its own task, and on shutdown stop consuming and drain what is in flight.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::{
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use thumbq_common::broker::{self, BrokerError, Publisher, Topology, bounded};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{context::Context, processor};

/// Runs one session until shutdown, when in-flight tasks have been drained (`Ok`), or until the connection fails
/// (`Err`; the caller reconnects).
pub async fn consume(
    ctx: &Arc<Context>,
    topology: &Arc<Topology>,
    shutdown: &CancellationToken,
) -> Result<(), BrokerError> {
    let settings = &ctx.settings;
    let connection = broker::connect(&settings.amqp, &format!("thumbq-worker {}", settings.worker.id)).await?;
    let timeout = settings.amqp.timeout;
    // Every step of the set-up is bounded: a broker that accepts and then stalls must not hang the worker.
    let publisher = Publisher::open(&connection, topology.clone(), timeout).await?;
    publisher.declare_topology().await?;
    let channel = bounded(timeout, "opening a channel", connection.create_channel()).await?;
    // Per-consumer prefetch: quorum queues do not support global QoS.
    bounded(
        timeout,
        "setting the prefetch",
        channel.basic_qos(settings.worker.concurrency, BasicQosOptions::default()),
    )
    .await?;
    let tag = format!("thumbq-worker {}", settings.worker.id);
    let consume = channel.basic_consume(
        topology.work.as_str().into(),
        tag.as_str().into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    );
    let mut deliveries = bounded(timeout, "starting to consume", consume).await?;
    ctx.rabbitmq.recovered();
    info!(queue = %topology.work, concurrency = settings.worker.concurrency, "consuming");

    let in_flight = TaskTracker::new();
    let failure = loop {
        tokio::select! {
            () = shutdown.cancelled() => break None,
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    in_flight.spawn(processor::process(ctx.clone(), publisher.clone(), delivery));
                }
                Some(Err(e)) => break Some(BrokerError::from(e)),
                None => break Some(BrokerError::Unavailable("the consumer was cancelled by the broker".into())),
            },
        }
    };

    // Stop new deliveries first; then let in-flight tasks finish and ack on the still-open channel. Deliveries
    // prefetched but not started are never acked, so RabbitMQ requeues them when the channel closes.
    if failure.is_none() {
        let cancel = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default());
        if let Err(e) = bounded(timeout, "cancelling the consumer", cancel).await {
            warn!(error = %e, "could not cancel the consumer");
        }
    }
    in_flight.close();
    let drained = tokio::time::timeout(settings.worker.shutdown_grace, in_flight.wait()).await.is_ok();
    if !drained {
        warn!(remaining = in_flight.len(), "shutdown grace ran out; unfinished tasks go back to the queue");
    }
    let _ = tokio::time::timeout(timeout, connection.close(200, "worker stopping".into())).await;
    match failure {
        None => Ok(()),
        Some(e) => Err(e),
    }
}
