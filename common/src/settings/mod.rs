//! The one typed configuration of thumbq, read from the environment once at start-up. Every field's doc names its
//! variable and default; the defaults run everything on one machine. This module is the only reader of the
//! environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

mod access;
mod env;
mod webhook;

pub use access::{AccessSettings, AllowedHosts, AuthMode, UrlSigning};
use env::Env;
pub use webhook::WebhookSettings;

/// All of thumbq's settings; the API and the worker each use the parts they need.
#[derive(Clone, Debug)]
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
    /// Log output.
    pub log: LogSettings,
}

/// RabbitMQ settings.
#[derive(Clone, Debug)]
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
}

impl AmqpSettings {
    /// The node URLs of `THUMBQ_AMQP_URL`, in the order given.
    pub fn nodes(&self) -> Vec<&str> {
        node_urls(&self.url)
    }
}

/// The node URLs of a comma-separated list, blanks left out.
fn node_urls(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).filter(|url| !url.is_empty()).collect()
}

/// Redis settings.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `THUMBQ_REDIS_URL`, default `redis://127.0.0.1:6379`.
    pub url: String,
    /// `THUMBQ_KEY_PREFIX`, default `thumbq:`: prefix of every Redis key and channel thumbq uses.
    pub key_prefix: String,
    /// `THUMBQ_RESULT_TTL_SECS`, default `86400` (24 h): how long task records are kept after their last change.
    pub result_ttl: Duration,
    /// `THUMBQ_REDIS_TIMEOUT_MS`, default `2000`: bound on getting a connection and on each command.
    pub timeout: Duration,
    /// `THUMBQ_REDIS_SENTINELS`, default none: `host:port` of Redis Sentinels, comma-separated. When set, thumbq
    /// asks them for the primary of `THUMBQ_REDIS_MASTER_NAME` (default `thumbq`) and follows failovers;
    /// `THUMBQ_REDIS_URL` then gives only the password and database.
    pub sentinels: Vec<String>,
    /// `THUMBQ_REDIS_MASTER_NAME`, default `thumbq`: the name the sentinels monitor the primary under.
    pub master_name: String,
    /// `THUMBQ_REDIS_WAIT_MS`, default `200` (at most `400`): with sentinels, how long a task's creation or state
    /// change waits for a replica to confirm it (`WAIT 1`) before going on without (logged; the next 5 s of
    /// writes then do not wait).
    pub replica_wait: Duration,
}

/// File store settings.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// `THUMBQ_STORE_URL`, default `data/store`: where originals and thumbnails live (see [`StoreLocation`]).
    pub location: StoreLocation,
    /// `THUMBQ_STORE_TIMEOUT_MS`, default `10000`: bound on each request to an object store (its own retries of
    /// a failed request included); a store that does not answer in time fails the attempt, which is retried later.
    pub timeout: Duration,
    /// `THUMBQ_DOWNLOAD_REDIRECT`, default `0`: with `1`, `GET /thumbnails/{name}` answers `302` to a presigned URL
    /// of the object store, valid for `THUMBQ_DOWNLOAD_REDIRECT_TTL_SECS` (default `300`), so the store (or a CDN
    /// in front of it) serves the bytes. Needs an object store.
    pub download_redirect: Option<Duration>,
    /// `THUMBQ_THUMBNAIL_TTL_SECS`, default `0` (keep forever): thumbnails older than this are deleted by the
    /// workers' sweep, and the records of successful tasks expire with them.
    pub thumbnail_ttl: Option<Duration>,
}

/// Where the store keeps its objects.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreLocation {
    /// `file:///abs/path` or a plain path: `originals/` and `thumbnails/` folders under it; only for processes that
    /// share the folder (one machine, or a network file system).
    Local(PathBuf),
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`: an object store shared by any number
    /// of machines.
    Object(ObjectLocation),
}

/// An object store's address and credentials.
#[derive(Clone, PartialEq)]
pub struct ObjectLocation {
    /// The store's URL, `s3://bucket/prefix` and the like.
    pub url: String,
    /// `THUMBQ_S3_ENDPOINT`, default none (AWS itself): the endpoint of an S3-compatible server such as
    /// `http://127.0.0.1:9000`; requests are then path-style, and plain `http` is allowed.
    pub endpoint: Option<String>,
    /// The cloud tools' own variables that were set ([`CLOUD_VARIABLES`]), lower-cased as object_store names them.
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for ObjectLocation {
    /// Names the credentials given, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ObjectLocation")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("options", &names)
            .finish()
    }
}

/// The variables AWS, Google Cloud and Azure tools read, passed on to the object store as they are. Listed rather
/// than matched by prefix so that this module stays the one reader of the environment, and the README can name them.
pub const CLOUD_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_ID",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_STORAGE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
];

impl StoreSettings {
    /// The folder of a local store; `None` for an object store.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        match &self.location {
            StoreLocation::Local(dir) => Some(dir),
            StoreLocation::Object(_) => None,
        }
    }

    fn read(env: &Env) -> Result<Self, SettingsError> {
        let url = env.string("THUMBQ_STORE_URL", "data/store");
        let location = match url.split_once("://") {
            None => StoreLocation::Local(PathBuf::from(url)),
            Some(("file", path)) if path.starts_with('/') => StoreLocation::Local(PathBuf::from(path)),
            Some(("file", _)) => {
                return Err(env.error("THUMBQ_STORE_URL", &url, "a file URL needs an absolute path: file:///abs/path"));
            }
            Some(("s3" | "gs" | "az", rest)) if !rest.is_empty() && !rest.starts_with('/') => {
                let options = CLOUD_VARIABLES
                    .iter()
                    .filter_map(|var| Some((var.to_ascii_lowercase(), (env.0)(var).filter(|v| !v.is_empty())?)))
                    .collect();
                let endpoint = Some(env.string("THUMBQ_S3_ENDPOINT", "")).filter(|e| !e.is_empty());
                StoreLocation::Object(ObjectLocation { url, endpoint, options })
            }
            Some(_) => {
                return Err(env.error("THUMBQ_STORE_URL", &url, "expected a path, file:///path, s3://bucket[/prefix], gs://bucket[/prefix] or az://container[/prefix]"));
            }
        };
        let download_redirect = env
            .flag("THUMBQ_DOWNLOAD_REDIRECT", false)?
            .then(|| env.positive("THUMBQ_DOWNLOAD_REDIRECT_TTL_SECS", 300))
            .transpose()?
            .map(Duration::from_secs);
        if download_redirect.is_some() && matches!(location, StoreLocation::Local(_)) {
            return Err(env.error(
                "THUMBQ_DOWNLOAD_REDIRECT",
                "1",
                "redirects need an object store (THUMBQ_STORE_URL=s3://...)",
            ));
        }
        Ok(Self {
            location,
            timeout: env.millis("THUMBQ_STORE_TIMEOUT_MS", 10_000)?,
            download_redirect,
            thumbnail_ttl: Some(env.parse::<u64>("THUMBQ_THUMBNAIL_TTL_SECS", 0)?)
                .filter(|secs| *secs > 0)
                .map(Duration::from_secs),
        })
    }
}

/// HTTP settings of the API.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// `THUMBQ_BIND`, default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// `THUMBQ_PUBLIC_URL`, default `http://127.0.0.1:8000`: the base of the absolute URLs the API hands out.
    pub public_url: String,
    /// `THUMBQ_REQUEST_TIMEOUT_SECS`, default `60`: requests running longer are answered 408 (above the 30 s
    /// long-poll bound).
    pub request_timeout: Duration,
    /// `THUMBQ_HEADER_READ_TIMEOUT_SECS`, default `10`: a connection that has not sent a whole request head this
    /// long after it opened (or after its previous request began) is closed.
    pub header_read_timeout: Duration,
    /// `THUMBQ_IDLE_TIMEOUT_SECS`, default `60`: a connection from which nothing arrives for this long is closed
    /// (an idle keep-alive connection, or a client that stalls mid-body).
    pub idle_timeout: Duration,
    /// `THUMBQ_MAX_CONNECTIONS`, default `1024`: open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// `THUMBQ_MAX_CONNECTIONS_PER_CLIENT`, default `64`: open connections from one client address at most (the
    /// proxies of `THUMBQ_TRUSTED_PROXIES` excepted); more are answered `429` and closed, so one client cannot
    /// hold every slot of `THUMBQ_MAX_CONNECTIONS`.
    pub max_connections_per_client: usize,
}

/// Limits on uploads.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    /// `THUMBQ_MAX_UPLOAD_BYTES`, default `26214400` (25 MiB): larger request bodies are answered 413.
    pub max_upload_bytes: usize,
    /// `THUMBQ_MAX_PIXELS`, default `50000000`: images whose width × height is larger are refused (422).
    pub max_pixels: u64,
    /// `THUMBQ_UPLOAD_MEMORY_MB`, default `256`: bytes of uploads the API holds at once (a streamed upload holds
    /// its first MiB; one read whole, or kept for an S3 PUT, all of it); an upload waits for room (up to 10 s, then
    /// `503`), so a burst of large uploads cannot exhaust its memory.
    pub upload_memory_mb: u32,
    /// `THUMBQ_MAX_TASK_WORK_MS`, default `10000`: an upload whose thumbnails would take longer to make, in
    /// milliseconds of one core as [`estimate_ms`](crate::task::estimate_ms) estimates them from their sizes,
    /// formats and qualities, is refused (400).
    pub max_task_work_ms: u64,
}

/// Worker settings.
#[derive(Clone, Debug)]
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

/// Exponential backoff of transient task failures; each delay is served by a RabbitMQ delay queue.
#[derive(Clone, Debug)]
pub struct RetrySettings {
    /// `THUMBQ_RETRY_BASE_MS`, default `1000`: delay after the first failed attempt.
    pub base: Duration,
    /// `THUMBQ_RETRY_FACTOR`, default `4`: each further delay is this many times the one before.
    pub factor: u32,
    /// `THUMBQ_RETRY_CAP_MS`, default `300000` (5 min): no delay is longer.
    pub cap: Duration,
    /// `THUMBQ_RETRY_MAX_ATTEMPTS`, default `5`: attempts in all before a task fails for good.
    pub max_attempts: u32,
}

/// Log output settings.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// `THUMBQ_LOG`, default `info`: an `EnvFilter` directive such as `info,thumbq_worker=debug`.
    pub filter: String,
    /// `LOG_FORMAT`, default `text`: `text` for people, `json` for log collectors.
    pub json: bool,
}

impl RetrySettings {
    /// The delay before attempt `failed + 1`, after attempt `failed` (1-based) failed.
    pub fn delay_after(&self, failed: u32) -> Duration {
        let factor = u64::from(self.factor).saturating_pow(failed.saturating_sub(1));
        let millis = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX).saturating_mul(factor);
        Duration::from_millis(millis).min(self.cap)
    }

    /// Every distinct delay a task can wait, shortest first: one delay queue each.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers: Vec<Duration> = (1..self.max_attempts).map(|a| self.delay_after(a)).collect();
        tiers.dedup();
        tiers
    }
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
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let host = host_name();
        let bind = env.parse("THUMBQ_BIND", SocketAddr::from(([127, 0, 0, 1], 8000)))?;
        let amqp_url = env.string("THUMBQ_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
        let nodes = node_urls(&amqp_url);
        if nodes.is_empty() || !nodes.iter().all(|url| url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(env.error(
                "THUMBQ_AMQP_URL",
                &amqp_url,
                "expected amqp:// URLs, comma-separated for a cluster",
            ));
        }
        Ok(Self {
            amqp: AmqpSettings {
                url: amqp_url.clone(),
                queue: env.string("THUMBQ_QUEUE", "thumbq.resize"),
                delivery_limit: env.parse("THUMBQ_DELIVERY_LIMIT", 5)?,
                max_queue_depth: env.parse("THUMBQ_MAX_QUEUE_DEPTH", 10_000)?,
                timeout: env.millis("THUMBQ_AMQP_TIMEOUT_MS", 5000)?,
                quorum_group_size: env.parse("THUMBQ_QUORUM_GROUP_SIZE", 0)?,
            },
            redis: RedisSettings {
                url: env.string("THUMBQ_REDIS_URL", "redis://127.0.0.1:6379"),
                key_prefix: env.string("THUMBQ_KEY_PREFIX", "thumbq:"),
                result_ttl: Duration::from_secs(env.positive("THUMBQ_RESULT_TTL_SECS", 86_400)?),
                timeout: env.millis("THUMBQ_REDIS_TIMEOUT_MS", 2000)?,
                sentinels: env
                    .string("THUMBQ_REDIS_SENTINELS", "")
                    .split(',')
                    .map(str::trim)
                    .filter(|address| !address.is_empty())
                    .map(str::to_owned)
                    .collect(),
                master_name: env.string("THUMBQ_REDIS_MASTER_NAME", "thumbq"),
                replica_wait: match env.millis("THUMBQ_REDIS_WAIT_MS", 200)? {
                    // The Redis client gives up on any reply after 500 ms; WAIT must answer before that.
                    wait if wait > Duration::from_millis(400) => {
                        return Err(env.error("THUMBQ_REDIS_WAIT_MS", &wait.as_millis().to_string(), "at most 400"));
                    }
                    wait => wait,
                },
            },
            store: StoreSettings::read(&env)?,
            http: HttpSettings {
                bind,
                public_url: env.string("THUMBQ_PUBLIC_URL", "http://127.0.0.1:8000").trim_end_matches('/').to_owned(),
                request_timeout: Duration::from_secs(env.positive("THUMBQ_REQUEST_TIMEOUT_SECS", 60)?),
                header_read_timeout: Duration::from_secs(env.positive("THUMBQ_HEADER_READ_TIMEOUT_SECS", 10)?),
                idle_timeout: Duration::from_secs(env.positive("THUMBQ_IDLE_TIMEOUT_SECS", 60)?),
                max_connections: env.positive("THUMBQ_MAX_CONNECTIONS", 1024)?,
                max_connections_per_client: env.positive("THUMBQ_MAX_CONNECTIONS_PER_CLIENT", 64)?,
            },
            access: AccessSettings::read(&env, bind)?,
            limits: LimitSettings {
                max_upload_bytes: env.positive("THUMBQ_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)?,
                max_pixels: env.positive("THUMBQ_MAX_PIXELS", 50_000_000)?,
                upload_memory_mb: env.positive("THUMBQ_UPLOAD_MEMORY_MB", 256)?,
                max_task_work_ms: env.positive("THUMBQ_MAX_TASK_WORK_MS", crate::task::DEFAULT_MAX_TASK_WORK_MS)?,
            },
            presets: {
                let text = env.string("THUMBQ_PRESETS", crate::task::DEFAULT_PRESETS);
                crate::task::parse_presets(&text).map_err(|reason| env.error("THUMBQ_PRESETS", &text, &reason))?
            },
            worker: WorkerSettings {
                concurrency: env.positive("THUMBQ_WORKER_CONCURRENCY", u16::try_from(cores).unwrap_or(u16::MAX))?,
                id: env.string("THUMBQ_WORKER_ID", &format!("{host}:{}", std::process::id())),
                host,
                shutdown_grace: Duration::from_secs(env.parse("THUMBQ_SHUTDOWN_GRACE_SECS", 30)?),
                heartbeat: Duration::from_secs(env.positive("THUMBQ_WORKER_HEARTBEAT_SECS", 5)?),
                memory_budget_mb: env.positive("THUMBQ_WORKER_MEMORY_MB", 512)?,
                task_time_limit: Duration::from_secs(env.positive("THUMBQ_TASK_TIME_LIMIT_SECS", 60)?),
                sweep_interval: Duration::from_secs(env.positive("THUMBQ_SWEEP_INTERVAL_SECS", 3600)?),
                metrics: match env.parse::<u16>("THUMBQ_WORKER_METRICS_PORT", 9100)? {
                    0 => None,
                    port => Some(SocketAddr::new(
                        env.parse("THUMBQ_WORKER_METRICS_HOST", std::net::IpAddr::from([127, 0, 0, 1]))?,
                        port,
                    )),
                },
            },
            retry: RetrySettings {
                base: env.millis("THUMBQ_RETRY_BASE_MS", 1000)?,
                factor: env.positive("THUMBQ_RETRY_FACTOR", 4)?,
                cap: env.millis("THUMBQ_RETRY_CAP_MS", 300_000)?,
                max_attempts: env.positive("THUMBQ_RETRY_MAX_ATTEMPTS", 5)?,
            },
            webhook: WebhookSettings::read(&env)?,
            log: LogSettings {
                filter: env.string("THUMBQ_LOG", "info"),
                json: match env.string("LOG_FORMAT", "text").as_str() {
                    "text" => false,
                    "json" => true,
                    other => {
                        return Err(env.error("LOG_FORMAT", other, "expected `text` or `json`"));
                    }
                },
            },
        })
    }
}

/// The machine's host name; with the pid it tells workers apart in records and logs.
fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Some(host.trim().to_owned()).filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_on_one_machine() {
        let s = Settings::default();
        assert_eq!(s.amqp.queue, "thumbq.resize");
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.limits.max_pixels, 50_000_000);
        assert_eq!(s.redis.result_ttl, Duration::from_secs(86_400));
        assert!(s.worker.concurrency >= 1);
        assert_eq!(s.access.auth, AuthMode::Off, "a loopback bind needs no key");
    }

    #[test]
    fn auto_auth_wants_keys_on_any_address_but_loopback() {
        let auth = |bind: &str, mode: Option<&str>| {
            let lookup = |var: &str| match var {
                "THUMBQ_BIND" => Some(bind.to_owned()),
                "THUMBQ_AUTH" => mode.map(str::to_owned),
                _ => None,
            };
            Settings::from_lookup(lookup).map(|s| s.access.auth)
        };
        assert_eq!(auth("0.0.0.0:8000", None).unwrap(), AuthMode::Keys);
        assert_eq!(auth("[::1]:8000", None).unwrap(), AuthMode::Off);
        assert_eq!(auth("0.0.0.0:8000", Some("off")).unwrap(), AuthMode::Off);
        assert_eq!(auth("127.0.0.1:8000", Some("keys")).unwrap(), AuthMode::Keys);
        assert_eq!(auth("127.0.0.1:8000", Some("maybe")).unwrap_err().var, "THUMBQ_AUTH");
    }

    #[test]
    fn signed_urls_need_a_long_key_that_never_shows_in_debug_output() {
        let with = |key: &str| {
            let key = key.to_owned();
            Settings::from_lookup(move |var| match var {
                "THUMBQ_SIGNED_URLS" => Some("1".into()),
                "THUMBQ_URL_SIGNING_KEY" => Some(key.clone()),
                _ => None,
            })
        };
        assert_eq!(with("short").unwrap_err().var, "THUMBQ_URL_SIGNING_KEY");
        let settings = with("0123456789abcdef0123456789abcdef").unwrap();
        assert!(settings.access.signed_urls.is_some());
        assert!(!format!("{settings:?}").contains("0123456789abcdef"), "the key is redacted");
    }

    #[test]
    fn the_store_url_picks_the_backend_and_cloud_credentials_never_show_in_debug_output() {
        let with = |vars: &'static [(&'static str, &'static str)]| {
            Settings::from_lookup(|var| vars.iter().find(|(name, _)| *name == var).map(|(_, v)| (*v).to_owned()))
                .map(|s| s.store)
        };
        assert_eq!(with(&[]).unwrap().location, StoreLocation::Local("data/store".into()));
        let file = with(&[("THUMBQ_STORE_URL", "file:///srv/thumbq")]).unwrap();
        assert_eq!(file.location, StoreLocation::Local("/srv/thumbq".into()));
        assert_eq!(with(&[("THUMBQ_STORE_URL", "file://relative")]).unwrap_err().var, "THUMBQ_STORE_URL");
        assert_eq!(with(&[("THUMBQ_STORE_URL", "ftp://host/x")]).unwrap_err().var, "THUMBQ_STORE_URL");
        assert_eq!(with(&[("THUMBQ_STORE_URL", "s3://")]).unwrap_err().var, "THUMBQ_STORE_URL");
        let s3 = with(&[
            ("THUMBQ_STORE_URL", "s3://bucket/thumbq"),
            ("THUMBQ_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
            ("THUMBQ_DOWNLOAD_REDIRECT", "1"),
        ])
        .unwrap();
        let StoreLocation::Object(object) = &s3.location else { panic!("an object store: {s3:?}") };
        assert_eq!(object.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(object.options, [("aws_secret_access_key".to_owned(), "very-secret-value".to_owned())]);
        assert_eq!(s3.download_redirect, Some(Duration::from_secs(300)));
        assert!(!format!("{s3:?}").contains("very-secret-value"), "credentials are redacted");
        let redirect_without_object_store = with(&[("THUMBQ_DOWNLOAD_REDIRECT", "1")]).unwrap_err();
        assert_eq!(redirect_without_object_store.var, "THUMBQ_DOWNLOAD_REDIRECT");
    }

    #[test]
    fn a_cluster_is_a_comma_separated_list_of_amqp_urls() {
        let amqp = |url: &str| {
            let url = url.to_owned();
            Settings::from_lookup(move |var| (var == "THUMBQ_AMQP_URL").then(|| url.clone())).map(|s| s.amqp)
        };
        let cluster = amqp("amqp://a:5672/%2f, amqp://b:5672/%2f,amqps://c:5671/%2f,").unwrap();
        assert_eq!(cluster.nodes(), ["amqp://a:5672/%2f", "amqp://b:5672/%2f", "amqps://c:5671/%2f"]);
        assert_eq!(amqp(" , ").unwrap_err().var, "THUMBQ_AMQP_URL");
        assert_eq!(amqp("amqp://a:5672/%2f,redis://b").unwrap_err().var, "THUMBQ_AMQP_URL");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = Settings::from_lookup(|v| (v == "THUMBQ_MAX_PIXELS").then(|| "many".to_owned())).unwrap_err();
        assert_eq!(err.var, "THUMBQ_MAX_PIXELS");
        let err = Settings::from_lookup(|v| (v == "THUMBQ_WORKER_CONCURRENCY").then(|| "0".to_owned())).unwrap_err();
        assert!(err.to_string().contains("THUMBQ_WORKER_CONCURRENCY"), "{err}");
    }

    /// Every variable read here, by scanning this module's `env.…("VAR", …)` calls.
    fn variables_read() -> Vec<String> {
        let source = [include_str!("mod.rs"), include_str!("access.rs"), include_str!("webhook.rs")].concat();
        let mut vars: Vec<String> = source
            .split('"')
            .filter(|word| (word.starts_with("THUMBQ_") && word.len() > 7) || *word == "LOG_FORMAT")
            .filter(|word| word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(str::to_owned)
            .collect();
        vars.sort();
        vars.dedup();
        vars
    }

    #[test]
    fn every_setting_is_documented_and_the_example_file_parses() {
        let (readme, example) = (include_str!("../../../README.md"), include_str!("../../../.env.example"));
        let vars = variables_read();
        assert!(vars.len() >= 20, "{vars:?}");
        for var in &vars {
            assert!(readme.contains(&format!("`{var}`")), "{var} is missing from the README's table");
            assert!(example.contains(&format!("{var}=")), "{var} is missing from .env.example");
        }
        let values: std::collections::HashMap<&str, &str> =
            example.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('=')).collect();
        let settings = Settings::from_lookup(|var| values.get(var).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(settings.http.public_url, Settings::default().http.public_url);
    }

    #[test]
    fn backoff_grows_by_factor_up_to_cap() {
        let retry = Settings::default().retry;
        let delays: Vec<u64> = (1..=5).map(|a| retry.delay_after(a).as_secs()).collect();
        assert_eq!(delays, [1, 4, 16, 64, 256]);
        let capped = RetrySettings { max_attempts: 9, ..retry };
        assert_eq!(capped.delay_after(8), Duration::from_secs(300));
        let tiers = capped.tiers();
        assert_eq!(tiers.len(), 6, "delays past the cap share one tier: {tiers:?}");
        assert_eq!(tiers.last(), Some(&Duration::from_secs(300)));
    }
}
