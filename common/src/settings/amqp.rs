//! RabbitMQ: the nodes, the work queue's name and arguments, the bound on connecting and confirming.

use std::time::Duration;

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Refused, Var, list},
};

static URL: Var<String> = Var::new(
    "THUMBQ_AMQP_URL",
    "amqp://guest:guest@127.0.0.1:5672/%2f",
    "RabbitMQ: one node, or a cluster's nodes comma-separated (each process tries them in a random order and reconnects to any)",
    amqp_urls,
    String::clone,
);
static QUEUE: Var<String> = Var::text(
    "THUMBQ_QUEUE",
    "thumbq.resize",
    "Work queue; `<queue>.dead` and `<queue>.delay.<ms>` are derived from it",
);
static DELIVERY_LIMIT: Var<u32> = Var::parsed(
    "THUMBQ_DELIVERY_LIMIT",
    "5",
    "Deliveries of one message (crashes, requeues) before RabbitMQ dead-letters it",
);
static MAX_QUEUE_DEPTH: Var<u32> = Var::parsed(
    "THUMBQ_MAX_QUEUE_DEPTH",
    "10000",
    "Past this many waiting tasks RabbitMQ refuses new ones and uploads get `503` (`0`: no limit; a quorum queue takes the one task that puts it over the limit, then refuses, so `2` holds 3); every API and worker must agree (it is a queue argument)",
);
static TIMEOUT: Var<Duration> = Var::millis(
    "THUMBQ_AMQP_TIMEOUT_MS",
    "5000",
    "Bound on connecting (to each node) and on waiting for a publisher confirm",
);
static QUORUM_GROUP_SIZE: Var<u32> = Var::parsed(
    "THUMBQ_QUORUM_GROUP_SIZE",
    "0",
    "Members of each quorum queue thumbq declares (`x-quorum-initial-group-size`); `3` suits clusters of more than three nodes",
);

static WORK_QUEUES: Var<u32> = Var::new(
    "THUMBQ_WORK_QUEUES",
    "1",
    "Work queues the tasks are spread over (1 to 16), by task id: `<queue>`, then `<queue>.1` ... each with its own delay and dead-letter queues; every worker consumes them all, and those a smaller number no longer uses until they are empty",
    work_queues,
    u32::to_string,
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] =
    &[&URL, &QUEUE, &DELIVERY_LIMIT, &MAX_QUEUE_DEPTH, &TIMEOUT, &QUORUM_GROUP_SIZE, &WORK_QUEUES];

/// RabbitMQ settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AmqpSettings {
    /// `THUMBQ_AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`: one node's URL, or a comma-separated
    /// list of a cluster's nodes (see [`AmqpSettings::nodes`]).
    pub url: String,
    /// `THUMBQ_QUEUE`, default `thumbq.resize`: the work queue; the dead-letter queue and delay queues are named
    /// after it (`<queue>.dead`, `<queue>.delay.<ms>`).
    pub queue: String,
    /// `THUMBQ_DELIVERY_LIMIT`, default `5`: deliveries of one message (crashes, requeues) before RabbitMQ
    /// dead-letters it.
    pub delivery_limit: u32,
    /// `THUMBQ_MAX_QUEUE_DEPTH`, default `10000` (`0`: no limit): tasks the work queue holds at most; past it
    /// RabbitMQ refuses new ones (`x-max-length`, `reject-publish`) and uploads get `503`.
    pub max_queue_depth: u32,
    /// `THUMBQ_AMQP_TIMEOUT_MS`, default `5000`: bound on connecting (to each node) and on waiting for a
    /// publisher confirm.
    pub timeout: Duration,
    /// `THUMBQ_QUORUM_GROUP_SIZE`, default `0` (RabbitMQ's own: a member on every node of the cluster): members of
    /// each queue thumbq declares (`x-quorum-initial-group-size`); `3` on a cluster of more than three nodes.
    pub quorum_group_size: u32,
    /// `THUMBQ_WORK_QUEUES`, default `1` (1 to 16): work queues the tasks are spread over by task id, each one
    /// quorum queue with a leader of its own, so that no one node carries every task. A task's retries and dead
    /// letter stay in its queue's lane.
    pub work_queues: u32,
}

impl AmqpSettings {
    /// The node URLs of `THUMBQ_AMQP_URL`, in the order given.
    pub fn nodes(&self) -> Vec<&str> {
        list(&self.url).collect()
    }

    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            url: env.get(&URL)?,
            queue: env.get(&QUEUE)?,
            delivery_limit: env.get(&DELIVERY_LIMIT)?,
            max_queue_depth: env.get(&MAX_QUEUE_DEPTH)?,
            timeout: env.get(&TIMEOUT)?,
            quorum_group_size: env.get(&QUORUM_GROUP_SIZE)?,
            work_queues: env.get(&WORK_QUEUES)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&URL, &self.url);
        out.put(&QUEUE, &self.queue);
        out.put(&DELIVERY_LIMIT, &self.delivery_limit);
        out.put(&MAX_QUEUE_DEPTH, &self.max_queue_depth);
        out.put(&TIMEOUT, &self.timeout);
        out.put(&QUORUM_GROUP_SIZE, &self.quorum_group_size);
        out.put(&WORK_QUEUES, &self.work_queues);
    }
}

/// `THUMBQ_AMQP_URL`: one or more `amqp://` or `amqps://` URLs, comma-separated.
fn amqp_urls(text: &str) -> Result<String, Refused> {
    let mut nodes = list(text).peekable();
    if nodes.peek().is_none() || !nodes.all(|url| url.starts_with("amqp://") || url.starts_with("amqps://")) {
        return Err(Refused::new("expected amqp:// URLs, comma-separated for a cluster"));
    }
    Ok(text.to_owned())
}

/// The most work queues `THUMBQ_WORK_QUEUES` may name: a task's queue is picked by four bits of its id.
pub const MAX_WORK_QUEUES: u32 = 16;

/// `THUMBQ_WORK_QUEUES`: 1 to [`MAX_WORK_QUEUES`].
fn work_queues(text: &str) -> Result<u32, Refused> {
    match super::var::positive::<u32>(text)? {
        n @ 1..=MAX_WORK_QUEUES => Ok(n),
        n => Err(Refused::showing(&n.to_string(), "1 to 16")),
    }
}
