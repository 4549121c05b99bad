//! The real local file store with a switch that makes its deletes fail, for tests of what a failed clean-up may
//! and may not do. Every other call goes to the real store.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use thumbq_common::{
    file_store::{FileStore, LocalFileStore},
    task::{TaskId, ThumbnailName},
};

/// A [`LocalFileStore`] whose `delete_original` fails while [`FaultyStore::fail_deletes`] is on.
pub struct FaultyStore {
    inner: LocalFileStore,
    fail_deletes: AtomicBool,
    /// Calls of `delete_original`, failed or not.
    pub deletes: AtomicUsize,
}

impl FaultyStore {
    /// Wraps the store under `dir`.
    pub fn open(dir: &std::path::Path) -> Arc<Self> {
        let inner = LocalFileStore::open(dir).expect("the store opens");
        Arc::new(Self { inner, fail_deletes: AtomicBool::new(false), deletes: AtomicUsize::new(0) })
    }

    /// Makes every later `delete_original` fail (`true`) or work (`false`).
    pub fn fail_deletes(&self, fail: bool) {
        self.fail_deletes.store(fail, Ordering::SeqCst);
    }
}

#[async_trait]
impl FileStore for FaultyStore {
    async fn put_original(&self, id: TaskId, bytes: Vec<u8>) -> io::Result<()> {
        self.inner.put_original(id, bytes).await
    }

    async fn get_original(&self, id: TaskId) -> io::Result<Option<Vec<u8>>> {
        self.inner.get_original(id).await
    }

    async fn delete_original(&self, id: TaskId) -> io::Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: the store refuses deletes"));
        }
        self.inner.delete_original(id).await
    }

    async fn put_thumbnail(&self, name: ThumbnailName, bytes: Vec<u8>) -> io::Result<()> {
        self.inner.put_thumbnail(name, bytes).await
    }

    async fn get_thumbnail(&self, name: ThumbnailName) -> io::Result<Option<Vec<u8>>> {
        self.inner.get_thumbnail(name).await
    }

    async fn originals_older_than(&self, age: Duration) -> io::Result<Vec<TaskId>> {
        self.inner.originals_older_than(age).await
    }

    async fn sweep_temporary(&self, age: Duration) -> io::Result<usize> {
        self.inner.sweep_temporary(age).await
    }
}
