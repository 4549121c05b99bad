//! Where originals and thumbnails live. Handlers and the worker see only the [`FileStore`] trait; [`open`] picks the
//! backend from `THUMBQ_STORE_URL`: [`LocalFileStore`] (two folders of one directory) or [`ObjectFileStore`] (S3,
//! GCS, Azure through the `object_store` crate).
//!
//! Objects are named only by [`TaskId`] and [`ThumbnailName`], never by a string from a request, so no request can
//! name a path outside the store. The import store ([`ImportStore`]), which imports read by key, is read-only.

use std::{io, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    settings::{StoreLocation, StoreSettings},
    task::{TaskId, ThumbnailName},
};

mod import;
mod local;
mod object;

pub use import::{ImportError, ImportStore};
pub use local::LocalFileStore;
pub use object::ObjectFileStore;

/// An original arriving in pieces (an upload streamed from its request body). An error from the stream (the
/// client went away, the upload passed its limit) ends the write and leaves nothing stored; it comes back as the
/// write's error, unchanged, so the caller can tell it from a failure of the store.
pub type Chunks<'a> = futures_util::stream::BoxStream<'a, io::Result<bytes::Bytes>>;

/// The chunks of an original already whole in memory.
pub fn whole(bytes: Vec<u8>) -> Chunks<'static> {
    use futures_util::StreamExt;
    futures_util::stream::once(async move { Ok(bytes::Bytes::from(bytes)) }).boxed()
}

/// A shared handle to a file store.
pub type SharedFileStore = Arc<dyn FileStore>;

/// Storage of uploaded originals and finished thumbnails.
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Stores the original of a new task as its chunks arrive, durably; returns its length. Nothing is left unless
    /// every chunk arrived. Nothing may read it before this returns (the task is published after).
    async fn put_original(&self, id: TaskId, chunks: Chunks<'_>) -> io::Result<u64>;
    /// Whether [`FileStore::put_original`] holds the whole original in memory until it is stored: the API then
    /// counts it against its upload memory.
    fn buffers_originals(&self) -> bool {
        false
    }
    /// Reads an original; `None` when there is none.
    async fn get_original(&self, id: TaskId) -> io::Result<Option<Vec<u8>>>;
    /// Stores the original of a task already published (an import's, read by a worker), whole or not at all:
    /// a reader (the task's next delivery, after a crash half-way) never sees part of it.
    async fn put_original_whole(&self, id: TaskId, bytes: bytes::Bytes) -> io::Result<()> {
        // An object store's PUT is all-or-nothing already.
        let chunks = futures_util::stream::once(std::future::ready(Ok(bytes)));
        self.put_original(id, Box::pin(chunks)).await.map(drop)
    }
    /// The first `max` bytes of an original (all of a shorter one); `None` when there is none.
    async fn original_head(&self, id: TaskId, max: usize) -> io::Result<Option<Vec<u8>>>;
    /// Deletes an original; deleting a missing one succeeds.
    async fn delete_original(&self, id: TaskId) -> io::Result<()>;
    /// Stores a thumbnail atomically: a reader sees the whole file or none.
    async fn put_thumbnail(&self, name: &ThumbnailName, bytes: Vec<u8>) -> io::Result<()>;
    /// Reads a thumbnail; `None` when there is none.
    async fn get_thumbnail(&self, name: &ThumbnailName) -> io::Result<Option<Vec<u8>>>;
    /// Deletes a thumbnail; deleting a missing one succeeds.
    async fn delete_thumbnail(&self, name: &ThumbnailName) -> io::Result<()>;
    /// Originals last written more than `age` ago: candidates for the sweep.
    async fn originals_older_than(&self, age: Duration) -> io::Result<Vec<TaskId>>;
    /// Thumbnails written more than `age` ago: what retention (`THUMBQ_THUMBNAIL_TTL_SECS`) expires.
    async fn thumbnails_older_than(&self, age: Duration) -> io::Result<Vec<ThumbnailName>>;
    /// Deletes what interrupted writes left behind more than `age` ago; returns how many files.
    async fn sweep_temporary(&self, age: Duration) -> io::Result<usize>;
    /// A cheap check that the store answers and its place exists: `/ready` asks it.
    async fn check(&self) -> io::Result<()>;
    /// A URL that serves the stored thumbnail straight from the store for `ttl`; `None` when it is not stored or
    /// the store cannot sign URLs (settings allow redirects only with stores that can).
    async fn signed_thumbnail_url(&self, _name: &ThumbnailName, _ttl: Duration) -> io::Result<Option<String>> {
        Ok(None)
    }
}

/// Opens the store the settings name. An object store is checked with a write, a read and a delete of a probe
/// object, so a missing bucket or missing rights stop start-up with the store's own message instead of failing
/// every task later.
pub async fn open(settings: &StoreSettings) -> io::Result<SharedFileStore> {
    match &settings.location {
        StoreLocation::Local(dir) => {
            let store = LocalFileStore::open(dir).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open the file store at {}: {e}", dir.display()))
            })?;
            Ok(Arc::new(store))
        }
        StoreLocation::Object(location) => {
            let store = ObjectFileStore::open(location, settings.timeout)?;
            store.probe().await.map_err(|e| {
                io::Error::new(e.kind(), format!("the object store {} is not usable: {e}", location.url))
            })?;
            Ok(Arc::new(store))
        }
    }
}
