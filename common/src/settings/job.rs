//! Bulk jobs: how many of a job's items RabbitMQ holds at once, how many a worker makes at once, and how long their
//! records live.

use std::time::Duration;

use super::{
    SettingsError,
    env::{Env, Out},
    var::{Described, Var},
};

static WINDOW: Var<u32> = Var::positive(
    "THUMBQ_JOB_WINDOW",
    "50",
    "Items of one job in RabbitMQ at once (queued, not yet ended); running jobs share the bulk lane round robin",
);
static CONCURRENCY: Var<u16> = Var::positive(
    "THUMBQ_JOB_CONCURRENCY",
    "1",
    "Job items one worker makes at once, beside its interactive tasks (`THUMBQ_WORKER_CONCURRENCY`), on as many \
     threads of lower CPU priority (nice 10)",
);

static ITEM_TTL: Var<Duration> = Var::secs(
    "THUMBQ_JOB_ITEM_TTL_SECS",
    "3600",
    "How long a job item's task record lives after its last change (the job keeps its counts and first failures); items stay out of `GET /tasks` but for `?job=`",
);

static TTL: Var<Duration> = Var::secs(
    "THUMBQ_JOB_TTL_SECS",
    "604800",
    "How long an ended job (its counts, failures and list of items) is kept after it ends; retry-failed keeps it again",
);

/// The variables of this module.
pub(super) static VARS: &[&dyn Described] = &[&WINDOW, &CONCURRENCY, &ITEM_TTL, &TTL];

/// How bulk jobs run.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    /// `THUMBQ_JOB_WINDOW`, default `50`: a job's items queued and not yet ended, at most; the pump hands out more
    /// as they end, each running job in turn, so one large job cannot crowd out another.
    pub window: u32,
    /// `THUMBQ_JOB_CONCURRENCY`, default `1`: job items a worker makes at once (its prefetch on the bulk lane), on
    /// top of its interactive tasks: an upload never waits behind job items in a queue, and shares the worker with
    /// this many at most.
    pub concurrency: u16,
    /// `THUMBQ_JOB_ITEM_TTL_SECS`, default `3600`: a job item's task record expires this long after its last change,
    /// so that a finished item costs Redis little (its job keeps the counts and the first failures). Items are in
    /// their job's index only (`GET /tasks?job=`), not in the listings of every task, a key's or a status.
    pub item_ttl: Duration,
    /// `THUMBQ_JOB_TTL_SECS`, default `604800` (a week): an ended job (DONE or CANCELLED) expires this long after
    /// its end, with its failures and its index of items; `retry-failed` before then keeps it until it ends again.
    pub ttl: Duration,
}

impl JobSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            window: env.get(&WINDOW)?,
            concurrency: env.get(&CONCURRENCY)?,
            item_ttl: env.get(&ITEM_TTL)?,
            ttl: env.get(&TTL)?,
        })
    }

    pub(super) fn write(&self, out: &mut Out) {
        out.put(&WINDOW, &self.window);
        out.put(&CONCURRENCY, &self.concurrency);
        out.put(&ITEM_TTL, &self.item_ttl);
        out.put(&TTL, &self.ttl);
    }
}
