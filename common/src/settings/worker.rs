//! The worker's behaviour: concurrency, name, shutdown, heartbeat, memory, time limit, sweep and metrics listener.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Var, positive},
};

/// Empty: the number of cores.
static CONCURRENCY: Var<Option<u16>> = Var::new(
    "THUMBQ_WORKER_CONCURRENCY",
    "",
    "Tasks a worker runs at once (and its prefetch)",
    |s| if s.is_empty() { Ok(None) } else { positive(s).map(Some) },
    |n| n.map(|n| n.to_string()).unwrap_or_default(),
);
/// Empty: `<hostname>:<pid>`.
static ID: Var<Option<String>> = Var::optional_text("THUMBQ_WORKER_ID", "Worker name in task records and logs");
static SHUTDOWN_GRACE: Var<Duration> =
    Var::secs_or_zero("THUMBQ_SHUTDOWN_GRACE_SECS", "30", "How long a stopping worker waits for its in-flight tasks");
static HEARTBEAT: Var<Duration> = Var::secs(
    "THUMBQ_WORKER_HEARTBEAT_SECS",
    "5",
    "Worker registry heartbeat; an entry expires after three missed ones",
);
static MEMORY_MB: Var<u32> = Var::positive(
    "THUMBQ_WORKER_MEMORY_MB",
    "512",
    "Memory budget of a worker's concurrent tasks (decode and resample), MiB; each task's peak is estimated from its header and a task waits for its share",
);
static TASK_TIME_LIMIT: Var<Duration> = Var::secs(
    "THUMBQ_TASK_TIME_LIMIT_SECS",
    "60",
    "A task whose image pipeline runs longer fails (`error_kind: time_limit`, not retried); checked between its steps",
);
static SWEEP_INTERVAL: Var<Duration> = Var::secs(
    "THUMBQ_SWEEP_INTERVAL_SECS",
    "3600",
    "How often a worker deletes originals whose task record expired and temporary files left by interrupted writes (older than an hour)",
);
static METRICS_HOST: Var<IpAddr> =
    Var::parsed("THUMBQ_WORKER_METRICS_HOST", "127.0.0.1", "Address of the worker's `/metrics` listener");
static METRICS_PORT: Var<u16> =
    Var::parsed("THUMBQ_WORKER_METRICS_PORT", "9100", "Port of the worker's `/metrics` listener; `0` turns it off");

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[
    &CONCURRENCY,
    &ID,
    &SHUTDOWN_GRACE,
    &HEARTBEAT,
    &MEMORY_MB,
    &TASK_TIME_LIMIT,
    &SWEEP_INTERVAL,
    &METRICS_HOST,
    &METRICS_PORT,
];

/// Worker settings.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerSettings {
    /// `THUMBQ_WORKER_CONCURRENCY`, default the number of cores: tasks run at once, and the prefetch count.
    pub concurrency: u16,
    /// `THUMBQ_WORKER_ID`, default `<hostname>:<pid>`: names the worker in task records and logs.
    pub id: String,
    /// The machine's host name (not a setting: read once here, for the worker registry).
    pub host: String,
    /// `THUMBQ_SHUTDOWN_GRACE_SECS`, default `30`: how long a stopping worker waits for in-flight tasks.
    pub shutdown_grace: Duration,
    /// `THUMBQ_WORKER_METRICS_HOST`, default `127.0.0.1`, and `THUMBQ_WORKER_METRICS_PORT`, default `9100` (`0`: no
    /// listener): where the worker serves `GET /metrics`.
    pub metrics: Option<SocketAddr>,
    /// `THUMBQ_SWEEP_INTERVAL_SECS`, default `3600`: how often the worker sweeps the store of what no task needs:
    /// originals whose task record has expired, and temporary files of interrupted writes older than an hour.
    pub sweep_interval: Duration,
    /// `THUMBQ_WORKER_MEMORY_MB`, default `512`: memory the worker's concurrent tasks may use for decoding and
    /// resampling together, in MiB. Each task's peak is estimated from its image header before it runs; a task
    /// waits until its share is free, and one that alone needs more fails (500, not retried).
    pub memory_budget_mb: u32,
    /// `THUMBQ_WORKER_HEARTBEAT_SECS`, default `5`: how often a worker refreshes its registry entry, which expires
    /// after three missed heartbeats.
    pub heartbeat: Duration,
    /// `THUMBQ_TASK_TIME_LIMIT_SECS`, default `60`: a task whose image pipeline runs longer fails (`time_limit`, not
    /// retried). Checked between steps (after the decode, after each rendition's resample and encode), so one step
    /// may run past it; keep it well below RabbitMQ's `consumer_timeout` (30 min).
    pub task_time_limit: Duration,
}

impl WorkerSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let host = host_name();
        Ok(Self {
            concurrency: env.get(&CONCURRENCY)?.unwrap_or(u16::try_from(cores).unwrap_or(u16::MAX)),
            id: env.get(&ID)?.unwrap_or_else(|| format!("{host}:{}", std::process::id())),
            host,
            shutdown_grace: env.get(&SHUTDOWN_GRACE)?,
            heartbeat: env.get(&HEARTBEAT)?,
            memory_budget_mb: env.get(&MEMORY_MB)?,
            task_time_limit: env.get(&TASK_TIME_LIMIT)?,
            sweep_interval: env.get(&SWEEP_INTERVAL)?,
            metrics: match env.get(&METRICS_PORT)? {
                0 => None,
                port => Some(SocketAddr::new(env.get(&METRICS_HOST)?, port)),
            },
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&CONCURRENCY, &Some(self.concurrency));
        out.put(&ID, &Some(self.id.clone()));
        out.put(&SHUTDOWN_GRACE, &self.shutdown_grace);
        out.put(&HEARTBEAT, &self.heartbeat);
        out.put(&MEMORY_MB, &self.memory_budget_mb);
        out.put(&TASK_TIME_LIMIT, &self.task_time_limit);
        out.put(&SWEEP_INTERVAL, &self.sweep_interval);
        match self.metrics {
            Some(address) => {
                out.put(&METRICS_HOST, &address.ip());
                out.put(&METRICS_PORT, &address.port());
            }
            None => {
                out.put_default(&METRICS_HOST);
                out.put(&METRICS_PORT, &0);
            }
        }
    }
}

/// The machine's host name; with the pid it tells workers apart in records and logs.
fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Some(host.trim().to_owned()).filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into())
}
