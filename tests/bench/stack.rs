//! The release `thumbq-api` and `thumbq-worker` binaries as processes on a queue, key prefix and store of their own,
//! on the RabbitMQ and Redis the environment names; stopped and cleaned up by [`Stack::stop`].

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use thumbq_common::{Settings, broker::Topology};

use crate::{services, wait::Wait};

/// An API and its workers.
pub struct Stack {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// What the binaries read.
    pub settings: Settings,
    /// The API process.
    pub api: Child,
    /// The worker processes.
    pub workers: Vec<Child>,
    /// The file store's folder, when it is not an object store.
    _store: tempfile::TempDir,
}

impl Stack {
    /// Starts the API and `workers` workers with the stack's own names, `extra` variables over them (and over the
    /// bench's environment), and waits until the API is ready. An `s3://` `THUMBQ_STORE_URL` in the environment
    /// puts the store there, under a prefix of the stack's own; else in a temporary folder.
    pub async fn start(release: &Path, workers: usize, extra: &[(&str, String)]) -> Self {
        let store = tempfile::tempdir().expect("a store");
        let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
        let store_url = match std::env::var("THUMBQ_STORE_URL") {
            Ok(url) if url.starts_with("s3://") => format!("{}/bench-{unique}", url.trim_end_matches('/')),
            _ => store.path().display().to_string(),
        };
        let mut env = vec![
            ("THUMBQ_QUEUE", format!("thumbq-bench.{unique}")),
            ("THUMBQ_KEY_PREFIX", format!("thumbq-bench:{unique}:")),
            ("THUMBQ_STORE_URL", store_url),
            ("THUMBQ_BIND", format!("127.0.0.1:{port}")),
            ("THUMBQ_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ("THUMBQ_RESULT_TTL_SECS", "600".into()),
            ("THUMBQ_WORKER_METRICS_PORT", "0".into()),
            ("THUMBQ_LOG", "warn".into()),
            // The load comes from one address, far past a per-client limit: the bench measures the pipeline.
            ("THUMBQ_ANON_RATE_LIMIT", "off".into()),
        ];
        env.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
        env.extend(extra.iter().map(|(name, value)| (*name, value.clone())));
        // What the binaries will read: these variables over the bench's own environment (THUMBQ_AMQP_URL, say).
        let settings = Settings::from_lookup(|var| {
            env.iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| value.clone())
                .or_else(|| std::env::var(var).ok())
        })
        .expect("valid settings");
        let spawn = |binary: &str| -> Child {
            Command::new(release.join(binary))
                .envs(env.iter().cloned())
                .stdout(Stdio::null())
                .spawn()
                .expect("binary starts")
        };
        let api = spawn("thumbq-api");
        let workers = (0..workers).map(|_| spawn("thumbq-worker")).collect();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let ready = async || client.get(format!("{base}/ready")).send().await.is_ok_and(|r| r.status() == 200);
        Wait::new("the API becomes ready").every(Duration::from_millis(100)).until(ready).await;
        Self { base, settings, api, workers, _store: store }
    }

    /// Stops the processes (SIGTERM, as an operator would) and deletes the stack's queues and keys.
    pub async fn stop(mut self) {
        for child in self.workers.iter_mut().chain(std::iter::once(&mut self.api)) {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
        let topology = Topology::new(&self.settings.amqp, &self.settings.retry);
        services::delete_queues(&self.settings.amqp, &topology.queue_names()).await;
        services::delete_keys(&self.settings.redis).await;
    }
}
