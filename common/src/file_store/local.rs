//! [`LocalFileStore`]: the store in one folder, for processes on one machine (or sharing a network file system).

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use futures_util::StreamExt;

use super::{Chunks, FileStore};
use crate::task::{TaskId, ThumbnailName};

/// A [`FileStore`] on the local file system: `<dir>/originals/<uuid>` and `<dir>/thumbnails/<uuid>.<ext>`.
#[derive(Clone, Debug)]
pub struct LocalFileStore {
    originals: PathBuf,
    thumbnails: PathBuf,
}

impl LocalFileStore {
    /// Opens the store under `dir`, creating its folders when missing.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let store = Self { originals: dir.join("originals"), thumbnails: dir.join("thumbnails") };
        std::fs::create_dir_all(&store.originals)?;
        std::fs::create_dir_all(&store.thumbnails)?;
        Ok(store)
    }

    /// The folder holding thumbnails.
    pub fn thumbnails_dir(&self) -> &Path {
        &self.thumbnails
    }
}

#[async_trait]
impl FileStore for LocalFileStore {
    async fn put_original(&self, id: TaskId, mut chunks: Chunks<'_>) -> io::Result<u64> {
        let path = self.originals.join(id.to_string());
        // Chunks arrive in pieces of a few KiB: they are gathered (not copied) into blocks, and each block is written
        // by one blocking job while the next arrives. The first job creates the file, the last one syncs it: one hop
        // to the blocking pool for a typical upload, where tokio::fs takes one (and a copy) per write.
        // The original is written under its final name, not renamed into place: its id is new, and nothing reads it
        // before the task is published, after this returns. That spares a journal commit per upload (a rename after
        // the file's sync is a second one). The file is deleted when its `TempPath` guard is dropped: before an
        // error is returned, or with a running job's result when this future is dropped; a crash half-way leaves an
        // original without a record, which the sweep removes.
        let mut block = Block::default();
        let mut in_flight: Option<tokio::task::JoinHandle<io::Result<Open>>> = None;
        let mut length = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // The running job's file goes with its result: wait for it, so that nothing is left on return.
                    if let Some(job) = in_flight {
                        drop(job.await);
                    }
                    return Err(e);
                }
            };
            length += chunk.len() as u64;
            block.push(chunk);
            if block.len >= WRITE_BLOCK {
                let open = finished(in_flight.take()).await?;
                let (block, path) = (std::mem::take(&mut block), path.clone());
                in_flight = Some(tokio::task::spawn_blocking(move || block.write(open, &path)));
            }
        }
        let open = finished(in_flight).await?;
        blocking(move || {
            let (file, guard) = block.write(open, &path)?;
            file.sync_all()?;
            sync_parent(&path)?;
            guard.keep().map(drop).map_err(|e| e.error)
        })
        .await?;
        Ok(length)
    }

    async fn get_original(&self, id: TaskId) -> io::Result<Option<Vec<u8>>> {
        read_if_exists(self.originals.join(id.to_string())).await
    }

    async fn original_head(&self, id: TaskId, max: usize) -> io::Result<Option<Vec<u8>>> {
        use tokio::io::AsyncReadExt;
        let file = match tokio::fs::File::open(self.originals.join(id.to_string())).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut head = Vec::with_capacity(max.min(1 << 20));
        file.take(max as u64).read_to_end(&mut head).await?;
        Ok(Some(head))
    }

    async fn delete_original(&self, id: TaskId) -> io::Result<()> {
        remove_if_exists(&self.originals.join(id.to_string())).await
    }

    async fn put_original_whole(&self, id: TaskId, bytes: bytes::Bytes) -> io::Result<()> {
        // Renamed into place, unlike an upload's original (see `put_original`): this task is already published,
        // and its next delivery must find the whole file or none.
        let path = self.originals.join(id.to_string());
        blocking(move || write_atomically(&path, &bytes)).await
    }

    async fn put_thumbnail(&self, name: &ThumbnailName, bytes: Vec<u8>) -> io::Result<()> {
        let path = self.thumbnails.join(name.to_string());
        blocking(move || write_atomically(&path, &bytes)).await
    }

    async fn get_thumbnail(&self, name: &ThumbnailName) -> io::Result<Option<Vec<u8>>> {
        read_if_exists(self.thumbnails.join(name.to_string())).await
    }

    async fn delete_thumbnail(&self, name: &ThumbnailName) -> io::Result<()> {
        remove_if_exists(&self.thumbnails.join(name.to_string())).await
    }

    async fn originals_older_than(&self, age: Duration) -> io::Result<Vec<TaskId>> {
        named_files_older_than(&self.originals, age).await
    }

    async fn thumbnails_older_than(&self, age: Duration) -> io::Result<Vec<ThumbnailName>> {
        named_files_older_than(&self.thumbnails, age).await
    }

    async fn check(&self) -> io::Result<()> {
        for dir in [&self.originals, &self.thumbnails] {
            if !tokio::fs::metadata(dir).await?.is_dir() {
                return Err(io::Error::other(format!("{} is not a folder", dir.display())));
            }
        }
        Ok(())
    }

    async fn sweep_temporary(&self, age: Duration) -> io::Result<usize> {
        let mut swept = 0;
        for dir in [self.originals.clone(), self.thumbnails.clone()] {
            let old = files_older_than(&dir, age, |name| name.starts_with(TEMPORARY_PREFIX));
            for path in tokio::task::spawn_blocking(old).await.map_err(io::Error::other)?? {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => swept += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(swept)
    }
}

/// Deletes a file; a missing one is already deleted.
async fn remove_if_exists(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The files in `dir` older than `age` whose names parse as `T` (a task id, a thumbnail name).
async fn named_files_older_than<T: std::str::FromStr>(dir: &Path, age: Duration) -> io::Result<Vec<T>> {
    let old = files_older_than(dir, age, |name| name.parse::<T>().is_ok());
    let paths = tokio::task::spawn_blocking(old).await.map_err(io::Error::other)??;
    Ok(paths.iter().filter_map(|p| p.file_name()?.to_str()?.parse().ok()).collect())
}

/// The size of the blocks a streamed original is written in. One block gathers while the one before is written:
/// 2 MiB at most, the share of upload memory the API reserves for an upload (twice its 1 MiB probe window). Most
/// uploads are under 1 MiB and written by a single blocking job (256 KiB blocks took three for a typical 0.63 MB
/// photo).
const WRITE_BLOCK: usize = 1 << 20;

/// An original being written, and the guard that deletes it when dropped before it is complete.
type Open = (std::fs::File, tempfile::TempPath);

/// The file a block job left open, once it has finished; `None` when no job ran yet.
async fn finished(job: Option<tokio::task::JoinHandle<io::Result<Open>>>) -> io::Result<Option<Open>> {
    match job {
        Some(job) => job.await.map_err(io::Error::other)?.map(Some),
        None => Ok(None),
    }
}

/// Chunks of an upload gathered for one write.
#[derive(Default)]
struct Block {
    chunks: Vec<bytes::Bytes>,
    len: usize,
}

impl Block {
    fn push(&mut self, chunk: bytes::Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// Appends the block to `open`, or to a new file at `path` (a blocking job).
    fn write(self, open: Option<Open>, path: &Path) -> io::Result<Open> {
        let (mut file, temp) = match open {
            Some(open) => open,
            None => {
                // The guard comes after the file: one over a file that already existed would delete it.
                let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
                let guard = tempfile::TempPath::try_from_path(path).inspect_err(|_| {
                    let _ = std::fs::remove_file(path);
                })?;
                (file, guard)
            }
        };
        // One `writev` for the block's chunks (hyper's, up to 64 KiB each), not one `write` per chunk. std's
        // `write_all_vectored` is not stable yet: this is its loop (std caps each call at IOV_MAX slices).
        let mut slices: Vec<io::IoSlice<'_>> = self.chunks.iter().map(|c| io::IoSlice::new(c)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match file.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => io::IoSlice::advance_slices(&mut slices, written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((file, temp))
    }
}

/// The name prefix of a file being written; only the sweep ever deletes one that was left behind.
const TEMPORARY_PREFIX: &str = ".tmp-";

/// A job listing the files in `dir` whose name passes `wanted` and that were last modified more than `age` ago.
fn files_older_than(
    dir: &Path,
    age: Duration,
    wanted: impl Fn(&str) -> bool + Send + 'static,
) -> impl FnOnce() -> io::Result<Vec<PathBuf>> + Send + 'static {
    let dir = dir.to_owned();
    move || {
        let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut old = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name_wanted = entry.file_name().to_str().is_some_and(&wanted);
            // A file removed since the listing is simply not a candidate.
            let modified = entry.metadata().and_then(|m| m.modified());
            if name_wanted && modified.is_ok_and(|m| m < cutoff) {
                old.push(entry.path());
            }
        }
        Ok(old)
    }
}

/// Writes to a unique temporary file beside `path`, syncs it, then renames it over `path`: the rename is atomic, so
/// readers and concurrent writers of the same name never see a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("store path has no parent"))?;
    let mut temp = temporary_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_parent(path)
}

/// A new temporary file in `dir`, named so that the sweep recognises it.
fn temporary_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new().prefix(TEMPORARY_PREFIX).tempfile_in(dir)
}

/// A rename is only durable once its folder is synced.
fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("store path has no parent"))?;
    std::fs::File::open(dir)?.sync_all()
}

async fn read_if_exists(path: PathBuf) -> io::Result<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn blocking(f: impl FnOnce() -> io::Result<()> + Send + 'static) -> io::Result<()> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::OutputFormat;

    #[tokio::test]
    async fn stores_reads_and_deletes_files_in_separate_folders() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileStore::open(dir.path()).unwrap();
        let id = TaskId::new();
        let name = ThumbnailName { id, format: OutputFormat::Png, rendition: None };

        store.put_original(id, super::super::whole(b"original".to_vec())).await.unwrap();
        store.put_thumbnail(&name, b"thumb".to_vec()).await.unwrap();
        assert_eq!(store.get_original(id).await.unwrap().as_deref(), Some(&b"original"[..]));
        assert_eq!(store.get_thumbnail(&name).await.unwrap().as_deref(), Some(&b"thumb"[..]));
        assert!(store.thumbnails_dir().join(name.to_string()).exists());

        store.delete_original(id).await.unwrap();
        store.delete_original(id).await.unwrap();
        assert_eq!(store.get_original(id).await.unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(store.thumbnails_dir()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files remain");
    }

    /// Chunks of `sizes` bytes each, then an error if `fails`.
    fn chunks(sizes: &[usize], fails: bool) -> Chunks<'static> {
        let mut items: Vec<io::Result<bytes::Bytes>> =
            sizes.iter().enumerate().map(|(i, &n)| Ok(bytes::Bytes::from(vec![i as u8; n]))).collect();
        if fails {
            items.push(Err(io::Error::other("the client went away")));
        }
        futures_util::stream::iter(items).boxed()
    }

    #[tokio::test]
    async fn an_original_in_many_blocks_is_stored_whole_and_a_failed_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileStore::open(dir.path()).unwrap();
        let sizes = [100, WRITE_BLOCK, 70_000, WRITE_BLOCK + 1, 5];
        let id = TaskId::new();
        let length = store.put_original(id, chunks(&sizes, false)).await.unwrap();
        let expected: Vec<u8> = sizes.iter().enumerate().flat_map(|(i, &n)| vec![i as u8; n]).collect();
        assert_eq!(length, expected.len() as u64);
        assert_eq!(store.get_original(id).await.unwrap(), Some(expected));

        let failed = TaskId::new();
        assert!(store.put_original(failed, chunks(&sizes, true)).await.is_err());
        assert_eq!(store.get_original(failed).await.unwrap(), None, "a failed upload leaves nothing");
        // An id is written once: a second write fails and leaves the first one as it was.
        assert!(store.put_original(id, chunks(&[3], false)).await.is_err());
        assert_eq!(store.get_original(id).await.unwrap().map(|o| o.len()), Some(length as usize));
        assert_eq!(std::fs::read_dir(dir.path().join("originals")).unwrap().count(), 1);
    }
}
