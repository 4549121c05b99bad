//! [`ImportStore`]: the store `{"key": …}` imports read originals from (`THUMBQ_IMPORT_URL`), read-only to thumbq.
//! A folder or an object store, both through `object_store` (its `LocalFileSystem` for a folder), so reading a key
//! is one code path whatever the store.
//!
//! A key is checked ([`crate::task::check_key`]) before it is joined to the prefix: it cannot name anything outside
//! it. A folder's own symbolic links are followed: what the operator links into the folder is theirs to choose.

use std::{io, sync::Arc, time::Duration};

use futures_util::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, local::LocalFileSystem, path::Path};

use super::object::{build, to_io};
use crate::{settings::StoreLocation, task::check_key};

/// The import store.
#[derive(Clone)]
pub struct ImportStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    timeout: Duration,
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
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match location {
            StoreLocation::Local(dir) => {
                let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
                    io::Error::new(io::ErrorKind::NotFound, format!("the import folder {}: {e}", dir.display()))
                })?;
                (Arc::new(store), Path::default())
            }
            StoreLocation::Object(object) => {
                let (store, _signer, prefix) = build(object, timeout)?;
                (store, prefix)
            }
        };
        Ok(Self { store, prefix, timeout })
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

    #[test]
    fn a_missing_folder_is_refused_at_opening() {
        let root = tempfile::tempdir().unwrap();
        let missing = StoreLocation::Local(root.path().join("nowhere"));
        assert!(ImportStore::open(&missing, Duration::from_secs(1)).is_err());
    }
}
