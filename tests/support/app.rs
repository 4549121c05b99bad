//! `spawn_app()` and its kin, the `TestApp` they return, its workers, store and Redis (its requests are in
//! `requests.rs`). Each app runs the real API and real workers in-process against the real RabbitMQ and Redis, on its
//! own queue names, Redis key prefix, temporary store and port, so tests run in parallel and leave nothing behind
//! (queues and keys are deleted when the app is dropped: `cleanup.rs`).

use std::{path::PathBuf, sync::Mutex, time::Duration};

use thumbq_api::state::AppState;
use thumbq_common::{
    Settings, TaskId,
    api_key::Rate,
    broker::Topology,
    file_store::{self, SharedFileStore},
    settings::{RedisSettings, RetrySettings, StoreLocation},
    state_store::StateStore,
    task::ThumbnailName,
};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::support::{
    s3::S3Server,
    services::{keys_under, redis_connection},
    wait::eventually,
};
use tokio_util::sync::CancellationToken;

/// A running API (and its workers) with everything a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// HTTP client for the API.
    pub client: reqwest::Client,
    /// The settings the API and workers run with.
    pub settings: Settings,
    /// Direct access to the task records.
    pub states: StateStore,
    /// The app's queue names.
    pub topology: Topology,
    /// Redis as the test sees it, never through a proxy the test may cut.
    pub direct_redis: RedisSettings,
    /// The API's task-event feed, to see how many long polls wait on it.
    events: thumbq_api::events::TaskEvents,
    /// The app's file store, as the test sees it.
    pub store: SharedFileStore,
    /// The S3 server of an app on [`Backend::S3`].
    pub s3: Option<S3Server>,
    /// Deleted with the app.
    _store_dir: tempfile::TempDir,
    pub(super) api_shutdown: CancellationToken,
    pub(super) api: Option<JoinHandle<anyhow::Result<()>>>,
    pub(super) workers: Mutex<Vec<WorkerHandle>>,
    /// Set by [`TestApp::stop`]; `Drop` then has nothing left to do.
    pub(super) stopped: bool,
}

/// A running in-process worker.
type WorkerHandle = (CancellationToken, JoinHandle<anyhow::Result<()>>);

/// Breaks (or mends) a store folder: a file where it should be, so every write into it fails (permissions do not
/// stop root).
pub fn break_folder(dir: &std::path::Path, broken: bool) {
    if broken {
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::write(dir, b"not a folder").unwrap();
    } else {
        std::fs::remove_file(dir).unwrap();
        std::fs::create_dir(dir).unwrap();
    }
}

/// Settings unique to one test: queue, key prefix and worker id; fast retries.
pub fn test_settings() -> Settings {
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let mut settings = Settings::from_env().expect("test environment settings are valid");
    settings.amqp.queue = format!("thumbq-test.{unique}");
    settings.redis.key_prefix = format!("thumbq-test:{unique}:");
    settings.retry =
        RetrySettings { base: Duration::from_millis(100), factor: 2, cap: Duration::from_secs(1), max_attempts: 3 };
    settings.worker.concurrency = 2;
    settings.worker.id = format!("test-worker-{unique}");
    settings.worker.shutdown_grace = Duration::from_secs(10);
    settings.worker.metrics = None; // parallel tests must not all bind 9100; the metrics test picks a free port
    // Every test comes from 127.0.0.1: the access tests set the limits they test.
    settings.access.anonymous_rate.rate = Rate::UNLIMITED;
    settings
}

/// The API and one worker, with test settings, on the local store.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_store(Backend::Local).await
}

/// Where a test app keeps its files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    /// A temporary folder.
    Local,
    /// A bucket on an S3 server of the test's own.
    S3,
}

/// The API and one worker, with test settings, on the `backend` store.
pub async fn spawn_app_with_store(backend: Backend) -> TestApp {
    let app = spawn_api_with_store(backend, |_| {}).await;
    app.start_worker().await;
    app
}

/// The API alone, no worker (start them with [`TestApp::start_worker`]), with test settings, on the local store.
pub async fn spawn_api() -> TestApp {
    spawn_api_configured(|_| {}).await
}

/// The API alone, no worker, on the local store, with test settings changed by `configure`.
pub async fn spawn_api_configured(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_api_with_store(Backend::Local, configure).await
}

/// The API alone, no worker, on the `backend` store, with test settings changed by `configure`.
pub async fn spawn_api_with_store(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    let direct_redis = settings.redis.clone();
    let store_dir = tempfile::tempdir().expect("a temporary directory");
    let s3 = match backend {
        Backend::Local => {
            settings.store.location = StoreLocation::Local(store_dir.path().join("store"));
            None
        }
        Backend::S3 => {
            let server = S3Server::start().await;
            settings.store.location = StoreLocation::Object(server.location("thumbq"));
            Some(server)
        }
    };
    configure(&mut settings);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    settings.http.public_url = base.clone();

    let api_shutdown = CancellationToken::new();
    let store = file_store::open(&settings.store).await.expect("the store opens");
    let state = AppState::new(settings.clone(), store.clone(), api_shutdown.clone()).expect("the API state builds");
    let events = state.events.clone();
    let api = tokio::spawn(thumbq_api::serve(listener, state, api_shutdown.clone()));
    TestApp {
        base,
        client: reqwest::Client::new(),
        // On a test's own cluster, its state is there (and goes with it); otherwise straight to the test Redis.
        states: StateStore::new(if settings.redis.cluster.is_empty() { &direct_redis } else { &settings.redis })
            .expect("a Redis pool"),
        direct_redis,
        topology: Topology::new(&settings.amqp, &settings.retry),
        settings,
        events,
        store,
        s3,
        _store_dir: store_dir,
        api_shutdown,
        api: Some(api),
        workers: Mutex::default(),
        stopped: false,
    }
}

/// Makes the PDF renderer of workers run in this process the test worker binary (this binary's `render-pdf` is a
/// test filter, not the renderer).
pub fn use_test_renderer() {
    thumbq_worker::pipeline::pdf_renderer::use_program(env!("CARGO_BIN_EXE_thumbq-test-worker").into());
}

impl TestApp {
    /// Starts one more in-process worker on this app's queue and waits until it consumes.
    pub async fn start_worker(&self) {
        let store = file_store::open(&self.settings.store).await.expect("the store opens");
        self.start_worker_with(self.settings.clone(), store).await;
    }

    /// Starts an in-process worker with its own `settings` (this app's queues) and `store`; waits until it consumes.
    pub async fn start_worker_with(&self, settings: Settings, store: SharedFileStore) {
        use_test_renderer();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(thumbq_worker::run(settings, store, shutdown.clone()));
        let expected = {
            let mut workers = self.workers.lock().expect("workers lock");
            workers.push((shutdown, handle));
            workers.len() as u32
        };
        eventually("the worker consumes", async || {
            let ended =
                self.workers.lock().expect("workers lock").last().is_some_and(|(_, handle)| handle.is_finished());
            assert!(!ended, "the worker stopped before it consumed: {:?}", self.join_last_worker().await);
            self.consumers().await >= expected
        })
        .await;
    }

    /// Waits for the last started worker to end and returns how it ended.
    async fn join_last_worker(&self) -> anyhow::Result<()> {
        let (_, handle) = self.workers.lock().expect("workers lock").pop().expect("a started worker");
        handle.await?
    }

    /// Waits until `count` long polls are waiting in the API.
    pub async fn until_long_polls_wait(&self, count: usize) {
        eventually(&format!("{count} long poll(s) wait"), async || self.events.waiting() >= count).await;
    }

    /// The thumbnails in the store, whatever its backend.
    pub async fn stored_thumbnails(&self) -> Vec<ThumbnailName> {
        self.store.thumbnails_older_than(Duration::ZERO).await.expect("the store lists thumbnails")
    }

    /// The originals in the store, whatever its backend.
    pub async fn stored_originals(&self) -> Vec<TaskId> {
        self.store.originals_older_than(Duration::ZERO).await.expect("the store lists originals")
    }

    /// Thumbnails in a local store's folder, temporary files of killed writers left out.
    pub fn thumbnails(&self) -> Vec<PathBuf> {
        let is_temporary = |p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
        Self::files_in(&self.thumbnails_dir()).into_iter().filter(|p| !is_temporary(p)).collect()
    }

    /// The local store's folder.
    pub fn store_dir(&self) -> PathBuf {
        self.settings.store.local_dir().expect("a test on the local store").to_owned()
    }

    /// The local store's folder of originals.
    pub fn originals_dir(&self) -> PathBuf {
        self.store_dir().join("originals")
    }

    /// The local store's folder of thumbnails.
    pub fn thumbnails_dir(&self) -> PathBuf {
        self.store_dir().join("thumbnails")
    }

    /// Files in a folder (hidden temporary files included).
    pub fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir).map(|d| d.map(|e| e.expect("a directory entry").path()).collect()).unwrap_or_default()
    }

    /// A connection to the app's Redis, not through any proxy the test may cut; its keys are under
    /// `self.direct_redis.key_prefix`.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis_connection(&self.direct_redis.url).await.expect("a Redis connection")
    }

    /// Every Redis key under this app's prefix.
    pub async fn redis_keys(&self) -> Vec<String> {
        keys_under(&self.direct_redis).await.expect("Redis answers KEYS")
    }

    /// Stops the API gracefully and waits for it to finish draining.
    pub async fn stop_api(&mut self) {
        self.api_shutdown.cancel();
        if let Some(api) = self.api.take() {
            api.await.expect("api task").expect("the API stops cleanly");
        }
    }
}
