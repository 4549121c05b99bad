//! Workers and the API as separate processes (the `thumbq-test-worker` and `thumbq-test-api` binaries), for tests
//! that kill them, signal them or measure their memory.

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

    /// The process's peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        peak_rss_mib(self.child.id().expect("the worker is running"))
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

/// The API as a process, serving on a port of its own.
pub struct ApiProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl ApiProcess {
    /// Starts the API configured like `settings` (its store, queues and key prefix) and waits until `/health`
    /// answers.
    pub async fn spawn(settings: &Settings) -> Self {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_thumbq-test-api"))
            .env_clear()
            .envs(settings_env(settings))
            .env("THUMBQ_BIND", format!("127.0.0.1:{port}"))
            .env("THUMBQ_PUBLIC_URL", &base)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the test API binary starts");
        let client = reqwest::Client::new();
        let health = format!("{base}/health");
        crate::support::eventually("the API process answers /health", async || {
            client.get(&health).send().await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self { child, base }
    }

    /// The process's peak resident memory so far, in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        peak_rss_mib(self.child.id().expect("the API is running"))
    }

    /// Kills the process and waits for it to end.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("the API process can be killed");
    }
}

/// Runs the API binary with `args` (`keys create …`) and these settings; its exit success and standard output.
pub async fn api_command(settings: &Settings, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_thumbq-test-api"))
        .env_clear()
        .envs(settings_env(settings))
        .args(args)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(crate::support::DEADLINE, output)
        .await
        .expect("the API command ends in time")
        .expect("the API binary runs");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A process's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse::<u64>().ok()).expect("VmHWM in kB") / 1024
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

/// The environment that gives a process these settings: every setting, by [`Settings::to_env`], at log level
/// `warn` (a spawned worker's id is set apart, by [`worker_id`]; an API's bind and public URL by
/// [`ApiProcess::spawn`]).
fn settings_env(settings: &Settings) -> Vec<(String, String)> {
    let mut env = settings.to_env();
    env.retain(|(var, _)| var != "THUMBQ_LOG");
    env.push(("THUMBQ_LOG".into(), "warn".into()));
    env
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use thumbq_common::{Settings, settings::Secret};

    /// Before `to_env`, only 31 settings were copied by hand: a webhook secret, presets or a TTL set by a test fell
    /// back to their defaults in the processes it spawned.
    #[test]
    fn a_spawned_process_reads_every_setting_of_its_test_back() {
        let mut settings = crate::support::test_settings();
        settings.webhook.secret = Some(Secret::new("0123456789abcdef0123456789abcdef".into()));
        settings.presets = Vec::new();
        settings.redis.result_ttl = Duration::from_secs(5);
        settings.worker.task_time_limit = Duration::from_secs(3);
        let env = super::settings_env(&settings);
        let read = Settings::from_lookup(|var| env.iter().find(|(name, _)| name == var).map(|(_, v)| v.clone()))
            .expect("the environment of a spawned process is valid");
        settings.log.filter = "warn".into();
        assert_eq!(read, settings);
    }
}
