//! A real file store (local or S3) with a switch that makes its deletes fail (what may a failed clean-up do?) and one
//! that holds thumbnail writes (what if the task is deleted while its thumbnail is being written?). Every other call
//! goes to the real store.

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
    file_store::{Chunks, FileStore, SharedFileStore},
    task::{TaskId, ThumbnailName},
};

/// A store whose `delete_original` fails while [`FaultyStore::fail_deletes`] is on, and whose
/// `put_thumbnail` waits while [`FaultyStore::hold_thumbnail_writes`] is on.
pub struct FaultyStore {
    inner: SharedFileStore,
    fail_deletes: AtomicBool,
    /// Calls of `delete_original`, failed or not.
    pub deletes: AtomicUsize,
    hold_writes: tokio::sync::watch::Sender<bool>,
    /// Thumbnail writes that have waited on the hold.
    pub held_writes: AtomicUsize,
}

impl FaultyStore {
    /// Wraps `inner`.
    pub fn wrap(inner: SharedFileStore) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_deletes: AtomicBool::new(false),
            deletes: AtomicUsize::new(0),
            hold_writes: tokio::sync::watch::Sender::new(false),
            held_writes: AtomicUsize::new(0),
        })
    }

    /// Makes every later `put_thumbnail` wait (`true`) until released (`false`).
    pub fn hold_thumbnail_writes(&self, hold: bool) {
        self.hold_writes.send_replace(hold);
    }

    /// Makes every later `delete_original` fail (`true`) or work (`false`).
    pub fn fail_deletes(&self, fail: bool) {
        self.fail_deletes.store(fail, Ordering::SeqCst);
    }
}

#[async_trait]
impl FileStore for FaultyStore {
    async fn put_original(&self, id: TaskId, chunks: Chunks<'_>) -> io::Result<u64> {
        self.inner.put_original(id, chunks).await
    }

    fn buffers_originals(&self) -> bool {
        self.inner.buffers_originals()
    }

    async fn get_original(&self, id: TaskId) -> io::Result<Option<Vec<u8>>> {
        self.inner.get_original(id).await
    }

    async fn put_original_whole(&self, id: TaskId, bytes: bytes::Bytes) -> io::Result<()> {
        self.inner.put_original_whole(id, bytes).await
    }

    async fn original_head(&self, id: TaskId, max: usize) -> io::Result<Option<Vec<u8>>> {
        self.inner.original_head(id, max).await
    }

    async fn delete_original(&self, id: TaskId) -> io::Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected: the store refuses deletes"));
        }
        self.inner.delete_original(id).await
    }

    async fn put_thumbnail(&self, name: &ThumbnailName, bytes: Vec<u8>) -> io::Result<()> {
        let mut hold = self.hold_writes.subscribe();
        if *hold.borrow_and_update() {
            self.held_writes.fetch_add(1, Ordering::SeqCst);
            let _ = hold.wait_for(|held| !held).await;
        }
        self.inner.put_thumbnail(name, bytes).await
    }

    async fn get_thumbnail(&self, name: &ThumbnailName) -> io::Result<Option<Vec<u8>>> {
        self.inner.get_thumbnail(name).await
    }

    async fn delete_thumbnail(&self, name: &ThumbnailName) -> io::Result<()> {
        self.inner.delete_thumbnail(name).await
    }

    async fn originals_older_than(&self, age: Duration) -> io::Result<Vec<TaskId>> {
        self.inner.originals_older_than(age).await
    }

    async fn thumbnails_older_than(&self, age: Duration) -> io::Result<Vec<ThumbnailName>> {
        self.inner.thumbnails_older_than(age).await
    }

    async fn sweep_temporary(&self, age: Duration) -> io::Result<usize> {
        self.inner.sweep_temporary(age).await
    }

    async fn check(&self) -> io::Result<()> {
        self.inner.check().await
    }
}
