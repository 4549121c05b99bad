//! Task events as a test sees them: every status change, in order, from Redis pub/sub (or from a record's history).

use futures_util::StreamExt;
use thumbq_common::{
    TaskId, TaskStatus,
    state_store::{codec, parse_event},
    task::StateChange,
};

use crate::support::{DEADLINE, TestApp};

impl TestApp {
    /// Subscribes to this app's task events; subscribe before acting so no event is missed.
    pub async fn watch(&self) -> Watcher {
        let client = redis::Client::open(self.direct_redis.url.as_str()).expect("a Redis URL");
        let mut pubsub = client.get_async_pubsub().await.expect("a Redis pub/sub connection");
        pubsub.subscribe(self.states.keys().events()).await.expect("subscribed");
        Watcher { messages: Box::pin(pubsub.into_on_message()), seen: Vec::new() }
    }
}

/// Records task events in order.
pub struct Watcher {
    messages: std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>,
    seen: Vec<(TaskId, TaskStatus)>,
}

impl Watcher {
    /// Waits until `count` different tasks have reached `status`.
    pub async fn until_count(&mut self, status: TaskStatus, count: usize) {
        let reached = |seen: &[(TaskId, TaskStatus)]| {
            let mut ids: Vec<TaskId> = seen.iter().filter(|(_, s)| *s == status).map(|(i, _)| *i).collect();
            ids.sort_by_key(|id| id.to_string());
            ids.dedup();
            ids.len()
        };
        let wait = async {
            while reached(&self.seen) < count {
                self.receive().await;
            }
        };
        if tokio::time::timeout(DEADLINE, wait).await.is_err() {
            panic!("only {} tasks reached {status} within {DEADLINE:?}, not {count}", reached(&self.seen));
        }
    }

    async fn receive(&mut self) {
        let message = self.messages.next().await.expect("the event stream stays open");
        let payload = message.get_payload::<String>().unwrap_or_default();
        if let Some((id, status, record)) = parse_event(&payload) {
            // The event carries the record as stored, in the status it announces.
            let carried = record.map(|value| codec::decode(id, value).expect("the event's record reads").status);
            assert_eq!(carried, Some(status), "{payload}");
            self.seen.push((id, status));
        }
    }

    /// Waits for task `id` to reach `status` and returns every status it went through, in order; fails the test
    /// after [`DEADLINE`].
    pub async fn until(&mut self, id: TaskId, status: TaskStatus) -> Vec<TaskStatus> {
        let history =
            |seen: &[(TaskId, TaskStatus)]| seen.iter().filter(|(i, _)| *i == id).map(|(_, s)| *s).collect::<Vec<_>>();
        let wait = async {
            while !history(&self.seen).contains(&status) {
                self.receive().await;
            }
        };
        if tokio::time::timeout(DEADLINE, wait).await.is_err() {
            panic!("task {id} did not reach {status} within {DEADLINE:?}; saw {:?}", history(&self.seen));
        }
        history(&self.seen)
    }
}

/// The statuses a task's record lists in its history, in order.
pub fn statuses(history: &[StateChange]) -> Vec<TaskStatus> {
    history.iter().map(|change| change.status).collect()
}
