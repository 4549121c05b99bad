//! Workers as separate processes (the `thumbq-test-worker` binary), for tests that kill them or signal them.

use std::process::Stdio;

use thumbq_common::Settings;
use tokio::process::{Child, Command};

/// A worker process running with a test's settings.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// Starts a worker process configured like `settings`, named `name`.
    pub fn spawn(settings: &Settings, name: &str) -> Self {
        let child = command(settings, name).stdout(Stdio::null()).spawn().expect("the test worker binary starts");
        Self { child }
    }

    /// A worker whose JSON log lines (`LOG_FORMAT=json`, level info) are captured; read them with [`Self::log`].
    pub fn spawn_logging_json(settings: &Settings, name: &str) -> Self {
        let mut command = command(settings, name);
        command.env("THUMBQ_LOG", "info").env("LOG_FORMAT", "json").stdout(Stdio::piped());
        Self { child: command.spawn().expect("the test worker binary starts") }
    }

    /// Stops the worker (SIGTERM) and returns everything it wrote to stdout.
    pub async fn log(mut self) -> String {
        use tokio::io::AsyncReadExt;
        assert!(self.terminate().await);
        let mut out = String::new();
        self.child.stdout.take().expect("stdout is piped").read_to_string(&mut out).await.expect("log readable");
        out
    }

    /// SIGKILL: the process dies at once, mid-task, without acking anything.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the worker is killed");
    }

    /// SIGTERM, then waits for the process to exit; returns whether it exited successfully.
    pub async fn terminate(&mut self) -> bool {
        let pid = self.child.id().expect("the worker is running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
        assert!(sent.success());
        self.child.wait().await.expect("the worker exits").success()
    }
}

/// The command of a worker process named `name` with these settings (stderr goes to the test's output).
fn command(settings: &Settings, name: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thumbq-test-worker"));
    command
        .env_clear()
        .envs(settings_env(settings))
        .env("THUMBQ_WORKER_ID", worker_id(settings, name))
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// The id a worker process named `name` registers under.
pub fn worker_id(settings: &Settings, name: &str) -> String {
    format!("{}-{name}", settings.worker.id)
}

/// The environment that gives a worker process these settings (its id is set apart, by [`worker_id`]).
fn settings_env(s: &Settings) -> Vec<(&'static str, String)> {
    vec![
        ("THUMBQ_AMQP_URL", s.amqp.url.clone()),
        ("THUMBQ_QUEUE", s.amqp.queue.clone()),
        ("THUMBQ_DELIVERY_LIMIT", s.amqp.delivery_limit.to_string()),
        ("THUMBQ_REDIS_URL", s.redis.url.clone()),
        ("THUMBQ_KEY_PREFIX", s.redis.key_prefix.clone()),
        ("THUMBQ_STORE_DIR", s.store.dir.display().to_string()),
        ("THUMBQ_MAX_PIXELS", s.limits.max_pixels.to_string()),
        ("THUMBQ_WORKER_CONCURRENCY", s.worker.concurrency.to_string()),
        ("THUMBQ_SHUTDOWN_GRACE_SECS", s.worker.shutdown_grace.as_secs().to_string()),
        ("THUMBQ_WORKER_HEARTBEAT_SECS", s.worker.heartbeat.as_secs().to_string()),
        ("THUMBQ_RETRY_BASE_MS", s.retry.base.as_millis().to_string()),
        ("THUMBQ_RETRY_FACTOR", s.retry.factor.to_string()),
        ("THUMBQ_RETRY_CAP_MS", s.retry.cap.as_millis().to_string()),
        ("THUMBQ_RETRY_MAX_ATTEMPTS", s.retry.max_attempts.to_string()),
        ("THUMBQ_WORKER_METRICS_PORT", s.worker.metrics.map_or(0, |a| a.port()).to_string()),
        ("THUMBQ_LOG", "warn".into()),
    ]
}
