//! Leaving nothing behind. A test ends with [`TestApp::stop`]: the API and workers stop, then the app's queues and
//! keys are deleted, all awaited. A test that panics before that still cleans up: `Drop` does the same on a thread
//! of its own (Drop cannot await), bounded by a deadline.

use std::time::Duration;

use thumbq_common::settings::{AmqpSettings, RedisSettings};

use super::{
    TestApp,
    services::{delete_keys, delete_queues, redis_connection},
    test_settings,
};

/// How long deleting a test's queues and keys may take.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(10);

impl TestApp {
    /// Stops every in-process worker gracefully and waits for them (their unacknowledged messages go back to the
    /// queue).
    pub async fn stop_workers(&self) {
        let workers: Vec<_> = self.workers.lock().map(|mut w| w.drain(..).collect()).unwrap_or_default();
        workers.iter().for_each(|(shutdown, _)| shutdown.cancel());
        for (_, handle) in workers {
            finish(handle).await;
        }
    }

    /// Stops the API and every worker, waits for them, and deletes the app's queues and keys.
    pub async fn stop(mut self) {
        self.api_shutdown.cancel();
        self.stop_workers().await;
        if let Some(api) = self.api.take() {
            finish(api).await;
        }
        let _ = tokio::time::timeout(CLEANUP_DEADLINE, delete_keys(&self.direct_redis)).await;
        let _ =
            tokio::time::timeout(CLEANUP_DEADLINE, delete_queues(&self.settings.amqp, &self.topology.queue_names()))
                .await;
        self.stopped = true;
    }
}

/// Waits for a stopping task; one that does not stop in time is aborted, so nothing of the app may declare queues
/// during the clean-up.
async fn finish<T>(task: tokio::task::JoinHandle<T>) {
    let abort = task.abort_handle();
    if tokio::time::timeout(CLEANUP_DEADLINE, task).await.is_err() {
        abort.abort();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.api_shutdown.cancel();
        let mut running: Vec<_> = self.api.take().into_iter().map(|api| api.abort_handle()).collect();
        if let Ok(mut workers) = self.workers.lock() {
            workers.iter().for_each(|(shutdown, _)| shutdown.cancel());
            running.extend(workers.drain(..).map(|(_, handle)| handle.abort_handle()));
        }
        let queues = self.topology.queue_names().into_iter().map(str::to_owned).collect();
        clean_up(running, self.direct_redis.clone(), Some((self.settings.amqp.clone(), queues)));
    }
}

/// A Redis key prefix of a test's own, for tests of the state store alone; its keys are deleted on drop.
pub struct ScratchRedis(pub RedisSettings);

impl ScratchRedis {
    /// A fresh prefix on the test Redis.
    pub fn new() -> Self {
        Self(test_settings().redis)
    }

    /// A connection to the test Redis; the scratch keys are under `self.0.key_prefix`.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis_connection(&self.0.url).await.expect("a Redis connection")
    }
}

impl Drop for ScratchRedis {
    fn drop(&mut self) {
        clean_up(Vec::new(), self.0.clone(), None);
    }
}

/// Once the `running` tasks have stopped (a worker finishing its last task after the cleanup would write its record
/// again), deletes every key under the Redis prefix and the `queues`. Runs on a thread of its own, since Drop cannot
/// await, and gives up after a deadline: a broker or Redis that hangs must fail the test run, not hang it.
fn clean_up(running: Vec<tokio::task::AbortHandle>, redis: RedisSettings, queues: Option<(AmqpSettings, Vec<String>)>) {
    let deleting = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + CLEANUP_DEADLINE;
        while running.iter().any(|task| !task.is_finished()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        running.iter().for_each(tokio::task::AbortHandle::abort);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let _ = tokio::time::timeout(CLEANUP_DEADLINE, delete_keys(&redis)).await;
            if let Some((amqp, queues)) = queues {
                let _ = tokio::time::timeout(CLEANUP_DEADLINE, delete_queues(&amqp, &queues)).await;
            }
        });
    });
    let _ = deleting.join();
}
