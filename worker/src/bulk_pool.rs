//! [`BulkPool`]: the threads bulk job items are made on, at a lower CPU priority than interactive uploads.
//!
//! A worker makes `THUMBQ_JOB_CONCURRENCY` job items beside its uploads. On a machine whose cores are all busy, an
//! upload's decode would otherwise share them equally with the job items and take up to twice as long; with the job
//! items' threads at nice 10, the kernel's scheduler gives an upload's thread about ten times their share when they
//! compete, and the job items still take every cycle that nothing interactive wants. The threads are made nicer once,
//! when they start: an unprivileged process may raise a thread's nice value but never lower it again, so the same
//! threads cannot serve both kinds of work.
// Two libc calls on the calling thread; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing::warn;

/// How much nicer the bulk threads are than the rest of the worker (`nice(1)`'s scale: 0 to 19).
const NICENESS: libc::c_int = 10;

/// A pool of low-priority threads for job items' CPU work.
pub struct BulkPool(rayon::ThreadPool);

impl std::fmt::Debug for BulkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BulkPool({} threads)", self.0.current_num_threads())
    }
}

impl BulkPool {
    /// `threads` threads (at least one), started at nice [`NICENESS`].
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("thumbq-bulk-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self(pool))
    }

    /// Runs `work` on one of the pool's threads: its result, or the panic's message if it panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let (done, result) = tokio::sync::oneshot::channel();
        // Caught here: a panic on a rayon thread would otherwise abort the whole worker.
        self.0.spawn(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
        });
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(panic_message(panic.as_ref())),
            Err(_) => Err("the bulk pool dropped the work".into()),
        }
    }
}

/// Raises the calling thread's nice value (on Linux a nice value is a thread's, not the whole process's).
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers; they touch no memory of ours.
    let (tid, result) = unsafe {
        let tid = libc::gettid();
        (tid, libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICENESS))
    };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        warn!(%error, tid, "could not lower a bulk thread's priority; job items compete with uploads as equals");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_nicer_thread_and_a_panic_is_an_error() {
        let pool = BulkPool::new(1).unwrap();
        // SAFETY: as above.
        let nice = pool.run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) });
        // SAFETY: as above; the test's own thread.
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        assert_eq!(nice.await.unwrap(), (ours + NICENESS).min(19));
        let failed = pool.run(|| -> u8 { panic!("a decoder bug") }).await;
        assert_eq!(failed.unwrap_err(), "a decoder bug");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7, "the pool outlives a panic");
    }
}
