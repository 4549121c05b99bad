//! The one typed configuration of thumbq, read from the environment once at start-up. Every field's doc names its
//! variable and default; the defaults run everything on one machine. This module is the only reader of the
//! environment.
//!
//! Each concern has its module (`amqp`, `redis`, `store`, `http`, `access`, `limits`, `worker`, `retry`, `webhook`,
//! `log`, `telemetry`), which describes each of its variables once as a [`Var`] (name, default, parser, one doc line) and reads
//! and writes its sub-struct through those descriptions. [`Settings::from_lookup`] parses them,
//! [`Settings::to_env`] writes them back for processes spawned by tests, and [`variables`] lists them for the
//! test that keeps README.md and `.env.example` in line.

mod access;
mod amqp;
mod env;
mod http;
mod import;
mod job;
mod limits;
mod log;
mod redis;
mod retry;
mod secret;
mod store;
mod telemetry;
mod var;
mod webhook;
mod worker;

pub use access::{AccessSettings, AllowedHosts, AuthMode, UrlSigning};
pub use amqp::{AmqpSettings, MAX_WORK_QUEUES};
use env::{Env, Out};
pub use http::HttpSettings;
pub use import::ImportSettings;
pub use job::JobSettings;
pub use limits::LimitSettings;
pub use log::LogSettings;
pub use redis::RedisSettings;
pub use retry::RetrySettings;
pub use secret::Secret;
pub use store::{CLOUD_VARIABLES, ObjectLocation, StoreLocation, StoreSettings};
pub use telemetry::{OtlpProtocol, TelemetrySettings};
pub use var::{Described, Var};
pub use webhook::WebhookSettings;
pub use worker::WorkerSettings;

/// All of thumbq's settings; the API and the worker each use the parts they need.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// RabbitMQ connection and queue names.
    pub amqp: AmqpSettings,
    /// Redis connection and task-record keys.
    pub redis: RedisSettings,
    /// Where originals and thumbnails are kept.
    pub store: StoreSettings,
    /// The API's HTTP listener.
    pub http: HttpSettings,
    /// Who may use the API, and how fast.
    pub access: AccessSettings,
    /// Limits on what is accepted.
    pub limits: LimitSettings,
    /// `THUMBQ_PRESETS`, default [`DEFAULT_PRESETS`](crate::task::DEFAULT_PRESETS): named renditions an upload asks
    /// for with `?preset=`, as `name=<width>x<height>[:option]...`, comma-separated (options: a fit, a format,
    /// `qN`, `lossless`, `auto`); an empty value: no presets.
    pub presets: Vec<crate::task::RenditionSpec>,
    /// The worker's behaviour.
    pub worker: WorkerSettings,
    /// Backoff of transient failures.
    pub retry: RetrySettings,
    /// Completion webhooks.
    pub webhook: WebhookSettings,
    /// Imports by URL and by key.
    pub import: ImportSettings,
    /// Bulk jobs.
    pub jobs: JobSettings,
    /// Log output.
    pub log: LogSettings,
    /// OpenTelemetry traces.
    pub telemetry: TelemetrySettings,
}

/// A setting with a bad value; start-up stops with this message.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct SettingsError {
    /// The variable's name.
    pub var: &'static str,
    /// The value found.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Default for Settings {
    /// The documented defaults, ignoring the environment.
    fn default() -> Self {
        Self::from_lookup(|_| None).expect("the defaults are valid")
    }
}

impl Settings {
    /// Reads every setting from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads every setting through `lookup`, a variable name to value function.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(&lookup);
        // The access settings' defaults follow the bind address, so it is read first.
        let bind = HttpSettings::bind(&env)?;
        Ok(Self {
            amqp: AmqpSettings::read(&env)?,
            redis: RedisSettings::read(&env)?,
            store: StoreSettings::read(&env)?,
            http: HttpSettings::read(&env)?,
            access: AccessSettings::read(&env, bind)?,
            limits: LimitSettings::read(&env)?,
            presets: env.get(&limits::PRESETS)?,
            worker: WorkerSettings::read(&env)?,
            retry: RetrySettings::read(&env)?,
            webhook: WebhookSettings::read(&env)?,
            import: ImportSettings::read(&env)?,
            jobs: JobSettings::read(&env)?,
            log: LogSettings::read(&env)?,
            telemetry: TelemetrySettings::read(&env)?,
        })
    }

    /// The environment that gives a process these settings: every described variable (secrets and the cloud
    /// tools' credentials included), such that [`Settings::from_lookup`] reads them back as equal settings.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut out = Out::default();
        self.amqp.write(&mut out);
        self.redis.write(&mut out);
        self.store.write(&mut out);
        self.http.write(&mut out);
        self.access.write(&mut out);
        self.limits.write(&mut out);
        out.put(&limits::PRESETS, &self.presets);
        self.worker.write(&mut out);
        self.retry.write(&mut out);
        self.webhook.write(&mut out);
        self.import.write(&mut out);
        self.jobs.write(&mut out);
        self.log.write(&mut out);
        self.telemetry.write(&mut out);
        out.0
    }
}

/// Every variable thumbq reads (the cloud tools' own, [`CLOUD_VARIABLES`], aside), grouped by concern.
pub fn variables() -> impl Iterator<Item = &'static dyn Described> {
    let concerns = [amqp::VARS, redis::VARS, store::VARS, http::VARS, access::VARS, limits::VARS, worker::VARS];
    let more = [retry::VARS, webhook::VARS, import::VARS, job::VARS, log::VARS, telemetry::VARS];
    concerns.into_iter().chain(more).flatten().copied()
}

#[cfg(test)]
mod tests;
