//! [`ImportStore`]: the store `{"key": …}` imports read originals from (`THUMBQ_IMPORT_URL`), read-only to thumbq.
//! A folder or an object store, both through `object_store` (its `LocalFileSystem` for a folder), so reading a key
//! is one code path whatever the store.
//!
//! A key is checked ([`crate::task::check_key`]) before it is joined to the prefix: it cannot name anything outside
//! it. A folder's own symbolic links are followed: what the operator links into the folder is theirs to choose.

use std::{io, sync::Arc, time::Duration};

use futures_util::StreamExt;
use object_store::{
    ObjectStore, ObjectStoreExt,
    list::{PaginatedListOptions, PaginatedListStore},
    local::LocalFileSystem,
    path::Path,
};

use super::object::{Built, build, to_io};
use crate::{settings::StoreLocation, task::check_key};

/// The import store.
#[derive(Clone)]
pub struct ImportStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    lister: Lister,
    timeout: Duration,
}

/// How a job's listing reads the store, a page at a time (see [`ImportStore::list_after`]).
#[derive(Clone)]
enum Lister {
    /// A folder's root, walked here rather than by `object_store`.
    Folder(std::path::PathBuf),
    /// The object store's own pages, asked for just as many keys as the page needs.
    Pages(Arc<dyn PaginatedListStore>),
}

impl std::fmt::Debug for ImportStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImportStore({}/{})", self.store, self.prefix)
    }
}

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The key is not one the store may be asked for (it would leave the prefix). Permanent.
    #[error("the key {key:?} is refused: {reason}")]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// No object has the key. Permanent.
    #[error("the import store has no object {0:?}")]
    NotFound(String),
    /// The object is larger than an upload may be. Permanent.
    #[error("the object {key:?} is larger than the upload limit of {max} bytes")]
    TooLarge {
        /// The key.
        key: String,
        /// The limit.
        max: u64,
    },
    /// The store failed or did not answer in time. Transient.
    #[error("the import store failed: {0}")]
    Store(#[from] io::Error),
}

impl ImportStore {
    /// Opens the store at `location`; each read is bounded by `timeout`. A folder must exist.
    pub fn open(location: &StoreLocation, timeout: Duration) -> io::Result<Self> {
        let (store, prefix, lister): (Arc<dyn ObjectStore>, Path, _) = match location {
            StoreLocation::Local(dir) => {
                let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
                    io::Error::new(io::ErrorKind::NotFound, format!("the import folder {}: {e}", dir.display()))
                })?;
                (Arc::new(store), Path::default(), Lister::Folder(dir.clone()))
            }
            StoreLocation::Object(object) => {
                let Built { store, pages, prefix, .. } = build(object, timeout)?;
                (store, prefix, Lister::Pages(pages))
            }
        };
        Ok(Self { store, prefix, lister, timeout })
    }

    /// The object at `key` under the prefix, whole, if it is at most `max` bytes.
    pub async fn read(&self, key: &str, max: u64) -> Result<Vec<u8>, ImportError> {
        check_key(key).map_err(|reason| ImportError::BadKey { key: key.to_owned(), reason })?;
        let relative =
            Path::parse(key).map_err(|e| ImportError::BadKey { key: key.to_owned(), reason: e.to_string() })?;
        let path: Path = self.prefix.parts().chain(relative.parts()).collect();
        let read = async {
            let found = match self.store.get(&path).await {
                Ok(found) => found,
                Err(object_store::Error::NotFound { .. }) => return Err(ImportError::NotFound(key.to_owned())),
                Err(e) => return Err(ImportError::Store(to_io(e))),
            };
            let too_large = || ImportError::TooLarge { key: key.to_owned(), max };
            if found.meta.size > max {
                return Err(too_large());
            }
            // Counted as it streams too: a file may grow after its size was read.
            let mut bytes = Vec::with_capacity(usize::try_from(found.meta.size).unwrap_or(0));
            let mut stream = found.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(to_io)?;
                if (bytes.len() + chunk.len()) as u64 > max {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        tokio::time::timeout(self.timeout, read).await.unwrap_or_else(|_| {
            let late = format!("the import store did not answer within {:?}", self.timeout);
            Err(ImportError::Store(io::Error::new(io::ErrorKind::TimedOut, late)))
        })
    }
}

impl ImportStore {
    /// Up to `limit` keys under the folder `under` (`""`: everything), in the store's order, after the key `after`:
    /// a job's listing, one page at a time, resumable from the last key it queued.
    ///
    /// An object store lists in key order, from `after` on (S3's `start-after`), asked for `limit` keys: its
    /// `ObjectStore::list` would fetch a page of 1,000 to give the pump its few. A folder is walked here, each
    /// directory's entries sorted by name, skipping the directories wholly before `after`: `object_store`'s own
    /// folder listing walks in no order, so a page could not be resumed without reading the whole tree again.
    pub async fn list_after(&self, under: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, ImportError> {
        let under = under.trim_matches('/');
        if !under.is_empty() {
            check_key(under).map_err(|reason| ImportError::BadKey { key: under.to_owned(), reason })?;
        }
        let pages = match &self.lister {
            Lister::Folder(root) => {
                let (root, under, after) = (root.clone(), under.to_owned(), after.map(str::to_owned));
                let walk = move || walk_after(&root, &under, after.as_deref(), limit);
                let walked = tokio::task::spawn_blocking(walk).await.map_err(io::Error::other)?;
                return walked.map_err(ImportError::Store);
            }
            Lister::Pages(pages) => pages,
        };
        let full = |key: &str| -> Path { self.prefix.parts().chain(Path::from(key).parts()).collect() };
        let folder = full(under);
        // A paginated listing adds no delimiter after the prefix: without one, `a` would also list `ab/…`.
        let folder = (!folder.as_ref().is_empty()).then(|| format!("{folder}/"));
        let list = async {
            let mut opts = PaginatedListOptions { offset: after.map(|a| full(a).to_string()), ..Default::default() };
            let mut keys = Vec::new();
            // A store may answer a short page before the end; its token asks for the rest.
            loop {
                opts.max_keys = Some(limit - keys.len());
                let page = pages.list_paginated(folder.as_deref(), opts.clone()).await.map_err(to_io)?;
                for meta in page.result.objects {
                    let relative: Vec<String> = meta
                        .location
                        .prefix_match(&self.prefix)
                        .into_iter()
                        .flatten()
                        .map(|p| p.as_ref().to_owned())
                        .collect();
                    keys.push(relative.join("/"));
                }
                match page.page_token {
                    Some(token) if keys.len() < limit => opts.page_token = Some(token),
                    _ => break,
                }
            }
            keys.truncate(limit);
            Ok::<_, io::Error>(keys)
        };
        match tokio::time::timeout(self.timeout, list).await {
            Ok(keys) => keys.map_err(ImportError::Store),
            Err(_) => {
                Err(ImportError::Store(io::Error::new(io::ErrorKind::TimedOut, "listing the import store timed out")))
            }
        }
    }
}

/// The walk of [`ImportStore::list_after`] in a folder: files only, keys `/`-separated and relative to `root`, in
/// the order of their components (each directory sorted by name).
fn walk_after(root: &std::path::Path, under: &str, after: Option<&str>, limit: usize) -> io::Result<Vec<String>> {
    let start = if under.is_empty() { root.to_path_buf() } else { root.join(under) };
    if !start.is_dir() {
        return Ok(Vec::new());
    }
    let after: Option<Vec<&str>> = after.map(|a| a.split('/').collect());
    let relative = |path: &std::path::Path| -> Option<Vec<String>> {
        let parts = path.strip_prefix(root).ok()?.components();
        parts.map(|c| c.as_os_str().to_str().map(str::to_owned)).collect()
    };
    // A directory is worth entering unless everything in it comes before `after`.
    let worth_entering = |parts: &[String]| match &after {
        None => true,
        Some(after) => {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            after.starts_with(&parts) || parts.as_slice() > after.as_slice()
        }
    };
    let walk = walkdir::WalkDir::new(&start).min_depth(1).sort_by_file_name().into_iter().filter_entry(|entry| {
        !entry.file_type().is_dir() || relative(entry.path()).is_some_and(|parts| worth_entering(&parts))
    });
    let mut keys = Vec::new();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        // Names that are not UTF-8 cannot be keys: skipped, as object stores have none.
        let Some(parts) = relative(entry.path()).filter(|_| entry.file_type().is_file()) else { continue };
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if after.as_ref().is_some_and(|after| parts.as_slice() <= after.as_slice()) {
            continue;
        }
        keys.push(parts.join("/"));
        if keys.len() == limit {
            break;
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_gives_its_objects_and_nothing_outside_it() {
        let root = tempfile::tempdir().unwrap();
        let library = root.path().join("library");
        std::fs::create_dir_all(library.join("photos/2024")).unwrap();
        std::fs::write(library.join("photos/2024/a.jpg"), b"jpeg bytes").unwrap();
        std::fs::write(root.path().join("secret.jpg"), b"not for you").unwrap();
        let store = ImportStore::open(&StoreLocation::Local(library), Duration::from_secs(5)).unwrap();
        assert_eq!(store.read("photos/2024/a.jpg", 100).await.unwrap(), b"jpeg bytes");
        assert!(matches!(store.read("photos/2024/b.jpg", 100).await, Err(ImportError::NotFound(_))));
        assert!(matches!(store.read("photos/2024/a.jpg", 5).await, Err(ImportError::TooLarge { max: 5, .. })));
        for escaping in ["../secret.jpg", "photos/../../secret.jpg", "/secret.jpg", "photos\\..\\..\\secret.jpg"] {
            let read = store.read(escaping, 100).await;
            assert!(matches!(read, Err(ImportError::BadKey { .. })), "{escaping}: {read:?}");
        }
    }

    #[tokio::test]
    async fn a_folder_is_listed_in_pages_that_resume_after_the_last_key() {
        let root = tempfile::tempdir().unwrap();
        let keys = ["a.jpg", "b/1.jpg", "b/2.jpg", "b/c/3.jpg", "b.jpg", "d/4.jpg", "e.jpg"];
        for key in keys {
            let path = root.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let store = ImportStore::open(&StoreLocation::Local(root.path().into()), Duration::from_secs(5)).unwrap();
        let mut listed: Vec<String> = Vec::new();
        loop {
            let page = store.list_after("", listed.last().map(String::as_str), 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            listed.extend(page);
        }
        // Component order: `b/…` before `b.jpg`, each once.
        assert_eq!(listed, ["a.jpg", "b/1.jpg", "b/2.jpg", "b/c/3.jpg", "b.jpg", "d/4.jpg", "e.jpg"]);
        assert_eq!(store.list_after("b", None, 10).await.unwrap(), ["b/1.jpg", "b/2.jpg", "b/c/3.jpg"]);
        assert_eq!(store.list_after("b", Some("b/2.jpg"), 10).await.unwrap(), ["b/c/3.jpg"]);
        assert!(store.list_after("nothing-here", None, 10).await.unwrap().is_empty());
        assert!(matches!(store.list_after("../", None, 10).await, Err(ImportError::BadKey { .. })));
    }

    #[test]
    fn a_missing_folder_is_refused_at_opening() {
        let root = tempfile::tempdir().unwrap();
        let missing = StoreLocation::Local(root.path().join("nowhere"));
        assert!(ImportStore::open(&missing, Duration::from_secs(1)).is_err());
    }
}
