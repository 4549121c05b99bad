//! A consuming session on one RabbitMQ connection: declare the topology, consume with manual acks and a prefetch of
//! `concurrency`, run each delivery as its own task, and on shutdown stop consuming and drain what is in flight.
//! With webhooks on, a second consumer on its own channel takes the webhooks' lane, with its own prefetch, so slow
//! receivers and thumbnails never wait for each other. With several work queues (`THUMBQ_WORK_QUEUES`) each has a
//! consumer of its own, their prefetch shared out and at most `concurrency` of their tasks running at once.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::{
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use thumbq_common::broker::{self, BrokerError, Publisher, Topology, bounded};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{job_pump, processor, state::WorkerState, webhook_delivery};

/// Opens a channel consuming `queue` with manual acks and a prefetch of `prefetch`, each step within `timeout`.
async fn open_consumer(
    connection: &lapin::Connection,
    queue: &str,
    prefetch: u16,
    tag: &str,
    timeout: std::time::Duration,
) -> Result<(lapin::Channel, lapin::Consumer), BrokerError> {
    let channel = bounded(timeout, "opening a channel", connection.create_channel()).await?;
    // Per-consumer prefetch: quorum queues do not support global QoS.
    bounded(timeout, "setting the prefetch", channel.basic_qos(prefetch, BasicQosOptions::default())).await?;
    let consume =
        channel.basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default());
    let deliveries = bounded(timeout, "starting to consume", consume).await?;
    Ok((channel, deliveries))
}

/// Runs one session until shutdown, when in-flight tasks have been drained (`Ok`), or until the connection fails
/// (`Err`; the caller reconnects). With a webhook `sender`, the webhooks' lane is consumed too. Each delivery is
/// settled (acked or nacked) here, on the channel this session owns, as its handler says.
pub async fn consume(
    ctx: &Arc<WorkerState>,
    topology: &Arc<Topology>,
    sender: Option<&Arc<webhook_delivery::Sender>>,
    shutdown: &CancellationToken,
) -> Result<(), BrokerError> {
    let settings = &ctx.settings;
    let connection = broker::connect(&settings.amqp, &format!("thumbq-worker {}", settings.worker.id)).await?;
    let timeout = settings.amqp.timeout;
    // Every step of the set-up is bounded: a broker that accepts and then stalls must not hang the worker.
    let publisher = Publisher::open(&connection, topology.clone(), timeout).await?;
    publisher.declare_topology().await?;
    let tag = format!("thumbq-worker {}", settings.worker.id);
    // Every work queue, and those a larger THUMBQ_WORK_QUEUES made, drained until empty.
    let queues: Vec<String> = topology.work_lanes().map(|lane| lane.work.clone()).collect();
    let queues = [queues, topology.leftovers(&connection, timeout).await].concat();
    let prefetch = settings.worker.concurrency.div_ceil(queues.len() as u16).max(1);
    let mut channels = Vec::with_capacity(queues.len());
    let mut streams = Vec::with_capacity(queues.len());
    for queue in &queues {
        let (channel, consumer) = open_consumer(&connection, queue, prefetch, &tag, timeout).await?;
        channels.push(channel);
        // A consumer's end (cancelled by the broker) shows as `None` in the merged stream.
        streams.push(consumer.map(Some).chain(futures_util::stream::once(async { None })).boxed());
    }
    let mut deliveries = futures_util::stream::select_all(streams);
    let permits = Arc::new(tokio::sync::Semaphore::new(usize::from(settings.worker.concurrency)));
    let webhook_lane = topology.webhooks.as_deref().filter(|_| sender.is_some());
    let mut webhooks = match webhook_lane {
        Some(lane) => Some(open_consumer(&connection, &lane.work, settings.webhook.concurrency, &tag, timeout).await?),
        None => None,
    };
    // Job items: a lane of their own, at their own small prefetch, beside the work queue (never in front of it).
    let bulk_lane = topology.bulk.clone().unwrap_or_else(|| topology.clone());
    let (bulk_channel, mut bulk) =
        open_consumer(&connection, &bulk_lane.work, settings.jobs.concurrency, &tag, timeout).await?;
    let bulk_publisher = publisher.in_lane(bulk_lane);
    let pump_stop = CancellationToken::new();
    tokio::spawn(job_pump::run(ctx.clone(), publisher.clone(), pump_stop.clone()));
    ctx.rabbitmq.recovered();
    info!(queues = ?queues, concurrency = settings.worker.concurrency, webhooks = webhooks.is_some(), "consuming");

    let in_flight = TaskTracker::new();
    let failure = loop {
        let next_webhook = async {
            match webhooks.as_mut() {
                Some((_, stream)) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break None,
            next = deliveries.next() => match next {
                Some(Some(Ok(delivery))) => {
                    let (ctx, publisher, permits) = (ctx.clone(), publisher.clone(), permits.clone());
                    in_flight.spawn(async move {
                        // Closed never: the semaphore lives as long as the session.
                        let _running = permits.acquire_owned().await;
                        processor::process(ctx, publisher, &delivery).await.apply(&delivery).await;
                    });
                }
                Some(Some(Err(e))) => break Some(BrokerError::from(e)),
                _ => break Some(BrokerError::Unavailable("a consumer was cancelled by the broker".into())),
            },
            next = bulk.next() => match next {
                Some(Ok(delivery)) => {
                    // Its retries and dead letters stay in the bulk lane.
                    let (ctx, publisher) = (ctx.clone(), bulk_publisher.clone());
                    in_flight.spawn(async move {
                        processor::process(ctx, publisher, &delivery).await.apply(&delivery).await;
                    });
                }
                Some(Err(e)) => break Some(BrokerError::from(e)),
                None => break Some(BrokerError::Unavailable("the bulk consumer was cancelled by the broker".into())),
            },
            next = next_webhook => match (next, sender) {
                (Some(Ok(delivery)), Some(sender)) => {
                    let (ctx, sender, publisher) = (ctx.clone(), sender.clone(), publisher.clone());
                    in_flight.spawn(async move {
                        webhook_delivery::deliver(ctx, sender, publisher, &delivery).await.apply(&delivery).await;
                    });
                }
                (Some(Err(e)), _) => break Some(BrokerError::from(e)),
                _ => break Some(BrokerError::Unavailable("the webhook consumer was cancelled by the broker".into())),
            },
        }
    };

    pump_stop.cancel();
    // Stop new deliveries first; then let in-flight tasks finish and ack on the still-open channel. Deliveries
    // prefetched but not started are never acked, so RabbitMQ requeues them when the channel closes.
    if failure.is_none() {
        for channel in channels.iter().chain([&bulk_channel]).chain(webhooks.as_ref().map(|(c, _)| c)) {
            let cancel = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default());
            if let Err(e) = bounded(timeout, "cancelling the consumer", cancel).await {
                warn!(error = %e, "could not cancel the consumer");
            }
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
