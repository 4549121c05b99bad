//! The feed of task changes that wakes long polls. One Redis pub/sub connection per API process listens on
//! `<prefix>events` (the state store publishes each changed task's id there) and fans the ids out to waiting
//! requests through a broadcast channel; it reconnects with backoff and tells waiters to re-read after a gap.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use thumbq_common::{
    TaskRecord,
    reconnect::{Backoff, Outage, reconnect_backoff},
    settings::RedisSettings,
    state_store::{StateError, StateStore, codec, parse_event, primary_client},
    task::{TaskId, TaskStatus},
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Waiting requests that can queue up before the slowest one has to re-read its task.
const CAPACITY: usize = 1024;

/// Something a waiting request should react to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    /// This task's record changed, to this status; the record as stored, when the event carried it (shared by
    /// every waiter).
    Changed(TaskId, TaskStatus, Option<Arc<str>>),
    /// Events may have been missed (the listener reconnected): every waiter re-reads its task.
    Resync,
}

/// A handle on the feed; cheap to clone.
#[derive(Clone)]
pub struct TaskEvents {
    sender: broadcast::Sender<TaskEvent>,
}

impl TaskEvents {
    /// Starts the listener task, which runs until `shutdown`.
    pub fn start(settings: &RedisSettings, channel: String, shutdown: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        tokio::spawn(listen(settings.clone(), channel, sender.clone(), shutdown));
        Self { sender }
    }

    /// Requests waiting on the feed now (long polls).
    pub fn waiting(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Subscribes to the feed; subscribe before reading a task's state, so no change falls in between.
    pub fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.sender.subscribe()
    }
}

impl TaskEvents {
    /// Waits up to `wait` for task `record.id` to reach SUCCESS or FAILURE: its record then, or `record` as read
    /// last if it did not (or `None` if it is gone); answers early when `shutdown` is cancelled. Woken by events,
    /// never by polling. `events` must be subscribed before `record` was read, so that no change is missed
    /// between; the record is read again only on its task's end (or a resync), not on every change.
    pub async fn wait_until_finished(
        &self,
        mut events: broadcast::Receiver<TaskEvent>,
        states: &StateStore,
        record: TaskRecord,
        wait: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Option<TaskRecord>, StateError> {
        let (id, deadline) = (record.id, tokio::time::Instant::now() + wait);
        let mut record = Some(record);
        loop {
            if record.as_ref().is_none_or(|r| r.status.is_terminal()) {
                return Ok(record);
            }
            let carried = loop {
                let event = tokio::select! {
                    event = tokio::time::timeout_at(deadline, events.recv()) => event,
                    () = shutdown.cancelled() => return Ok(record),
                };
                match event {
                    Err(_) => return Ok(record), // time is up
                    Ok(Ok(TaskEvent::Changed(changed, status, carried))) if changed == id && status.is_terminal() => {
                        break carried;
                    }
                    Ok(Ok(TaskEvent::Changed(..))) => continue,
                    Ok(Ok(TaskEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_))) => break None,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(record),
                }
            };
            // The record the event carried; read only when it carried none (an earlier version's event, a resync).
            record = match carried.and_then(|value| codec::decode(id, &value).ok()) {
                Some(finished) => Some(finished),
                None => states.get(id).await?,
            };
        }
    }
}

async fn listen(
    settings: RedisSettings,
    channel: String,
    sender: broadcast::Sender<TaskEvent>,
    shutdown: CancellationToken,
) {
    let mut backoff = reconnect_backoff();
    let outage = Outage::new("redis");
    while !shutdown.is_cancelled() {
        // The primary is looked up on every attempt: after a Sentinel failover it is another server.
        let connect = async {
            let mut pubsub = primary_client(&settings).await?.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        };
        match tokio::time::timeout(settings.timeout, connect).await {
            Ok(Ok(pubsub)) => {
                backoff.reset();
                outage.recovered();
                info!(%channel, "listening for task events");
                let _ = sender.send(TaskEvent::Resync);
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = messages.next() => match message {
                            Some(message) => {
                                let payload = message.get_payload::<String>().unwrap_or_default();
                                if let Some((id, status, record)) = parse_event(&payload) {
                                    let _ = sender.send(TaskEvent::Changed(id, status, record.map(Arc::from)));
                                }
                            }
                            None => break,
                        },
                    }
                }
                outage.failed(&"the task event connection was lost");
            }
            Ok(Err(e)) => outage.failed(&e),
            Err(_) => outage.failed(&"no answer in time"),
        }
        let delay = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => {}
        }
    }
}
