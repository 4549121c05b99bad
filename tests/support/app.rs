//! `spawn_app()` and the typed helpers every test uses. Each app runs the real API and real workers in-process
//! against the real RabbitMQ and Redis, on its own queue names, Redis key prefix, temporary store and port, so tests
//! run in parallel and leave nothing behind (queues and keys are deleted when the app is dropped: `cleanup.rs`).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use thumbq_api::routes::thumbnails::Accepted as AcceptedTask;
use thumbq_api::{routes::thumbnails::Accepted, state::AppState};
use thumbq_common::{
    Settings, TaskId, TaskRecord, TaskStatus,
    api_key::Rate,
    broker::Topology,
    file_store::{self, SharedFileStore},
    settings::{RedisSettings, RetrySettings, StoreLocation},
    state_store::StateStore,
    task::ThumbnailName,
};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::support::{s3::S3Server, services::keys_under};
use tokio_util::sync::CancellationToken;

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

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

/// Waits until `condition` holds, checking every 20 ms; fails the test with `what` after [`DEADLINE`]. The one
/// deadline loop of the tests: every wait on a condition goes through it.
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "not true within {DEADLINE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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

/// The API and one worker, with test settings.
pub async fn spawn_app() -> TestApp {
    let app = spawn_api_with(|_| {}).await;
    app.start_worker().await;
    app
}

/// Where a test app keeps its files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    /// A temporary folder.
    Local,
    /// A bucket on an S3 server of the test's own.
    S3,
}

/// The API and one worker on `backend`, with test settings.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    let app = spawn_api_on(backend, |_| {}).await;
    app.start_worker().await;
    app
}

/// The API alone (start workers with [`TestApp::start_worker`]), with test settings changed by `configure`.
pub async fn spawn_api_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_api_on(Backend::Local, configure).await
}

/// The API alone on `backend`, with test settings changed by `configure`.
pub async fn spawn_api_on(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
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
        states: StateStore::new(&direct_redis).expect("a Redis pool"),
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

impl TestApp {
    /// Starts one more in-process worker on this app's queue and waits until it consumes.
    pub async fn start_worker(&self) {
        let store = file_store::open(&self.settings.store).await.expect("the store opens");
        self.start_worker_with(self.settings.clone(), store).await;
    }

    /// Starts an in-process worker with its own `settings` (this app's queues) and `store`; waits until it consumes.
    pub async fn start_worker_with(&self, settings: Settings, store: SharedFileStore) {
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(thumbq_worker::run(settings, store, shutdown.clone()));
        let expected = {
            let mut workers = self.workers.lock().expect("workers lock");
            workers.push((shutdown, handle));
            workers.len() as u32
        };
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.consumers().await < expected {
            let ended =
                self.workers.lock().expect("workers lock").last().is_some_and(|(_, handle)| handle.is_finished());
            assert!(!ended, "the worker stopped before it consumed: {:?}", self.join_last_worker().await);
            assert!(tokio::time::Instant::now() < deadline, "worker did not start consuming within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

    /// Uploads `bytes` as multipart field `image` with the query string `query` (without `?`).
    pub async fn upload(&self, bytes: Vec<u8>, query: &str) -> reqwest::Response {
        self.upload_field("image", bytes, query).await
    }

    /// Uploads `bytes` as the multipart field `field`.
    pub async fn upload_field(&self, field: &str, bytes: Vec<u8>, query: &str) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("upload.png");
        let form = reqwest::multipart::Form::new().part(field.to_owned(), part);
        self.client
            .post(format!("{}/thumbnails?{query}", self.base))
            .multipart(form)
            .send()
            .await
            .expect("the API answers")
    }

    /// Uploads `bytes` as the raw body with `content_type`.
    pub async fn upload_raw(&self, bytes: Vec<u8>, content_type: &str, query: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/thumbnails?{query}", self.base))
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("the API answers")
    }

    /// Uploads and asserts `202 Accepted`.
    pub async fn upload_ok(&self, bytes: Vec<u8>, query: &str) -> Accepted {
        let response = self.upload(bytes, query).await;
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert_eq!(status, 202, "upload refused: {text}");
        serde_json::from_str(&text).expect("an Accepted body")
    }

    /// Uploads every image from `clients` concurrent clients, retrying `503`s as a client honouring `Retry-After`
    /// would (quickly, here); returns the accepted tasks.
    pub async fn upload_batch(&self, images: Vec<Vec<u8>>, clients: usize) -> Vec<AcceptedTask> {
        let queue = Arc::new(Mutex::new(images));
        let mut uploaders = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (queue, client, url) = (queue.clone(), self.client.clone(), format!("{}/thumbnails", self.base));
            uploaders.spawn(async move {
                let mut accepted = Vec::new();
                loop {
                    // Take the next image and release the lock before any await.
                    let next = queue.lock().expect("queue lock").pop();
                    let Some(image) = next else { break };
                    let deadline = tokio::time::Instant::now() + DEADLINE;
                    loop {
                        let form = reqwest::multipart::Form::new()
                            .part("image", reqwest::multipart::Part::bytes(image.clone()));
                        let response = client.post(&url).multipart(form).send().await;
                        let refusal = match response {
                            Ok(r) if r.status() == 202 => {
                                break accepted.push(r.json::<AcceptedTask>().await.expect("Accepted"));
                            }
                            Ok(r) if r.status() == 503 => r.text().await.unwrap_or_default(),
                            Ok(r) => panic!("upload answered {}: {}", r.status(), r.text().await.unwrap_or_default()),
                            Err(e) => panic!("upload failed: {e}"),
                        };
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "uploads answered 503 for {DEADLINE:?}, last: {refusal}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                accepted
            });
        }
        uploaders.join_all().await.into_iter().flatten().collect()
    }

    /// The promise: every accepted task ends in SUCCESS or FAILURE within the deadline, and every SUCCESS has its
    /// thumbnail in the store, decodable, at the requested size. Returns the number of successes.
    pub async fn assert_all_finished(&self, accepted: &[AcceptedTask]) -> usize {
        let mut successes = 0;
        for task in accepted {
            let response = self.wait_for_thumbnail(&task.name).await;
            // A stored thumbnail is served before its SUCCESS is recorded (that write may be waiting out an outage).
            let deadline = tokio::time::Instant::now() + DEADLINE;
            let record = loop {
                let record = self.task(task.id).await;
                if record.status.is_terminal() || tokio::time::Instant::now() > deadline {
                    break record;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(record.status.is_terminal(), "{} ended {}", task.id, record.status);
            if record.status == TaskStatus::Success {
                assert_eq!(response.status(), 200);
                let name: ThumbnailName = task.name.parse().expect("a thumbnail name");
                let stored = self.store.get_thumbnail(&name).await.expect("the store answers");
                let image = image::load_from_memory(&stored.expect("the thumbnail is stored"))
                    .expect("the stored thumbnail decodes");
                assert_eq!((image.width(), image.height()), (record.args.width, record.args.height));
                successes += 1;
            }
        }
        successes
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

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("the API answers")
    }

    /// Long-polls a thumbnail until its task finishes (or the deadline passes) and returns the answer.
    pub async fn wait_for_thumbnail(&self, name: &str) -> reqwest::Response {
        let response = self.get(&format!("/thumbnails/{name}?wait={}", DEADLINE.as_secs())).await;
        assert_ne!(response.status(), 202, "task behind {name} did not finish within {DEADLINE:?}");
        response
    }

    /// Downloads a finished thumbnail and decodes it.
    pub async fn download_image(&self, name: &str) -> image::DynamicImage {
        let response = self.wait_for_thumbnail(name).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
        let bytes = response.bytes().await.expect("thumbnail bytes");
        thumbq_worker::pipeline::quality::decode(&bytes)
    }

    /// `GET /tasks/{id}`, asserting 200.
    pub async fn task(&self, id: TaskId) -> TaskRecord {
        let response = self.get(&format!("/tasks/{id}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("a task record")
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
