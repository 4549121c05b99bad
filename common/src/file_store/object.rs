//! [`ObjectFileStore`]: the store in an S3-compatible bucket (or GCS, Azure) through the `object_store` crate, so
//! any number of machines share it without a shared folder.
//!
//! The guarantees of the local store carry over: a PUT is all-or-nothing (a reader sees a whole object or none, so
//! there are no temporary objects to sweep), and a call returns only once the store has confirmed it, so the worker
//! acks a task only after its thumbnail is stored.

use std::{io, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutOptions,
    PutPayload, PutPayloadMut, RetryConfig,
    aws::{AmazonS3Builder, AmazonS3ConfigKey},
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    gcp::{GoogleCloudStorageBuilder, GoogleConfigKey},
    list::PaginatedListStore,
    path::Path,
    signer::Signer,
};

use super::{Chunks, FileStore};
use crate::{
    settings::ObjectLocation,
    task::{TaskId, ThumbnailName},
};

/// A [`FileStore`] on an object store: `<prefix>/originals/<uuid>` and `<prefix>/thumbnails/<uuid>.<ext>`.
#[derive(Clone)]
pub struct ObjectFileStore {
    store: Arc<dyn ObjectStore>,
    signer: Arc<dyn Signer>,
    originals: Path,
    thumbnails: Path,
    prefix: Path,
    timeout: Duration,
}

impl std::fmt::Debug for ObjectFileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectFileStore({}/{})", self.store, self.prefix)
    }
}

impl ObjectFileStore {
    /// Builds the client for `location`; connects to nothing yet. Each call is bounded by `timeout`, the client's
    /// own retries of a failed request included.
    pub fn open(location: &ObjectLocation, timeout: Duration) -> io::Result<Self> {
        let Built { store, signer, prefix, .. } = build(location, timeout)?;
        Ok(Self {
            originals: prefix.clone().join("originals"),
            thumbnails: prefix.clone().join("thumbnails"),
            prefix,
            store,
            signer,
            timeout,
        })
    }

    /// Writes, reads back and deletes a probe object: proves the bucket exists and the credentials may do what
    /// thumbq does. Run once at start-up.
    pub async fn probe(&self) -> io::Result<()> {
        let path = self.prefix.clone().join(format!(".thumbq-probe-{}", uuid::Uuid::new_v4()));
        self.put(&path, b"probe".to_vec(), None).await?;
        let read = self.get(&path).await?;
        self.bounded(self.store.delete(&path)).await?;
        match read.as_deref() {
            Some(b"probe") => Ok(()),
            _ => Err(io::Error::other("a probe object read back differently from how it was written")),
        }
    }

    fn original(&self, id: TaskId) -> Path {
        self.originals.clone().join(id.to_string())
    }

    fn thumbnail(&self, name: &ThumbnailName) -> Path {
        self.thumbnails.clone().join(name.to_string())
    }

    /// Runs one store call within the timeout, mapping its error.
    async fn bounded<T>(&self, call: impl Future<Output = object_store::Result<T>>) -> io::Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(to_io),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the object store did not answer within {:?}", self.timeout),
            )),
        }
    }

    async fn put(&self, path: &Path, bytes: Vec<u8>, content_type: Option<&'static str>) -> io::Result<()> {
        let mut attributes = Attributes::new();
        if let Some(content_type) = content_type {
            // What the store answers a presigned download with: the API's own download headers.
            attributes.insert(Attribute::ContentType, content_type.into());
            attributes.insert(Attribute::CacheControl, "public, max-age=31536000, immutable".into());
        }
        let options = PutOptions { attributes, ..PutOptions::default() };
        // `Bytes::from(Vec)` takes the buffer over: the upload is not copied again.
        self.bounded(self.store.put_opts(path, PutPayload::from(bytes::Bytes::from(bytes)), options)).await.map(drop)
    }

    async fn get(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let read = async {
            match self.store.get(path).await {
                Ok(result) => result.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.bounded(read).await
    }

    async fn delete(&self, path: &Path) -> io::Result<()> {
        let delete = async {
            match self.store.delete(path).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        };
        self.bounded(delete).await
    }

    /// The names under `folder` parsing as `T` whose objects were last written more than `age` ago.
    async fn older_than<T: std::str::FromStr>(&self, folder: &Path, age: Duration) -> io::Result<Vec<T>> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        // A listing pages through the whole folder: bounded per page by the client, not as a whole.
        let objects: Vec<_> = self.store.list(Some(folder)).try_collect().await.map_err(to_io)?;
        Ok(objects
            .into_iter()
            .filter(|meta| meta.last_modified < cutoff)
            .filter_map(|meta| meta.location.filename()?.parse().ok())
            .collect())
    }
}

#[async_trait]
impl FileStore for ObjectFileStore {
    fn buffers_originals(&self) -> bool {
        true
    }

    async fn put_original(&self, id: TaskId, mut chunks: Chunks<'_>) -> io::Result<u64> {
        // One PUT of the chunks as they came (no contiguous copy): a multipart upload would stream, but S3 wants
        // parts of 5 MiB or more and three requests instead of one for what is mostly a small file.
        let mut payload = PutPayloadMut::new();
        while let Some(chunk) = chunks.next().await {
            payload.push(chunk?);
        }
        let length = payload.content_length() as u64;
        let options = PutOptions::default();
        self.bounded(self.store.put_opts(&self.original(id), payload.freeze(), options)).await?;
        Ok(length)
    }

    async fn get_original(&self, id: TaskId) -> io::Result<Option<Vec<u8>>> {
        self.get(&self.original(id)).await
    }

    async fn original_head(&self, id: TaskId, max: usize) -> io::Result<Option<Vec<u8>>> {
        // A bounded range past the end gives the rest of the object (object_store's `GetRange::Bounded`).
        let options = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(0..max as u64)),
            ..Default::default()
        };
        let path = self.original(id);
        let read = async {
            match self.store.get_opts(&path, options).await {
                Ok(result) => result.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.bounded(read).await
    }

    async fn delete_original(&self, id: TaskId) -> io::Result<()> {
        self.delete(&self.original(id)).await
    }

    async fn put_thumbnail(&self, name: &ThumbnailName, bytes: Vec<u8>) -> io::Result<()> {
        self.put(&self.thumbnail(name), bytes, Some(name.format.content_type())).await
    }

    async fn get_thumbnail(&self, name: &ThumbnailName) -> io::Result<Option<Vec<u8>>> {
        self.get(&self.thumbnail(name)).await
    }

    async fn delete_thumbnail(&self, name: &ThumbnailName) -> io::Result<()> {
        self.delete(&self.thumbnail(name)).await
    }

    async fn originals_older_than(&self, age: Duration) -> io::Result<Vec<TaskId>> {
        self.older_than(&self.originals, age).await
    }

    async fn thumbnails_older_than(&self, age: Duration) -> io::Result<Vec<ThumbnailName>> {
        self.older_than(&self.thumbnails, age).await
    }

    async fn sweep_temporary(&self, _age: Duration) -> io::Result<usize> {
        // Single PUTs are atomic: an interrupted one leaves nothing behind.
        Ok(0)
    }

    async fn check(&self) -> io::Result<()> {
        // One listing request of the top folder (two entries at most): fails when the bucket is gone or the
        // credentials stopped working.
        self.bounded(self.store.list_with_delimiter(Some(&self.prefix))).await.map(drop)
    }

    async fn signed_thumbnail_url(&self, name: &ThumbnailName, ttl: Duration) -> io::Result<Option<String>> {
        let path = self.thumbnail(name);
        // Signing is local; the HEAD keeps a redirect from pointing at nothing.
        match self.bounded(self.store.head(&path)).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let url = self.bounded(self.signer.signed_url(http::Method::GET, &path, ttl)).await?;
        Ok(Some(url.to_string()))
    }
}

/// An object store's client, seen as a store, a URL signer and a lister of single pages; and the prefix its URL
/// names.
pub(super) struct Built {
    pub store: Arc<dyn ObjectStore>,
    pub signer: Arc<dyn Signer>,
    /// Lists one page of at most so many keys (`ObjectStore::list` always asks for the store's largest page).
    pub pages: Arc<dyn PaginatedListStore>,
    pub prefix: Path,
}

/// The client of the object store at `location` (it also signs URLs), and the prefix its URL names; connects to
/// nothing yet. Each call is bounded by `timeout`, the client's own retries of a failed request included.
pub(super) fn build(location: &ObjectLocation, timeout: Duration) -> io::Result<Built> {
    let url = url::Url::parse(&location.url).map_err(invalid)?;
    let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(invalid)?;
    let plain_http = location.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
    let client = ClientOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(timeout.min(Duration::from_secs(5)))
        .with_allow_http(plain_http);
    // The task-level retries (delay queues) handle longer outages: the client only smooths over a blip.
    let retry = RetryConfig { backoff: BackoffConfig::default(), max_retries: 3, retry_timeout: timeout };
    // The three builders share no trait, so one macro gives each the URL, the credentials it knows, the client
    // options and the retry policy.
    macro_rules! configured {
        ($builder:ty, $key:ty) => {
            location
                .options
                .iter()
                .filter_map(|(key, value)| Some((key.parse::<$key>().ok()?, value)))
                .fold(<$builder>::new().with_url(url.as_str()), |b, (key, value)| b.with_config(key, value))
                .with_client_options(client)
                .with_retry(retry)
        };
    }
    type Shared = (Arc<dyn ObjectStore>, Arc<dyn Signer>, Arc<dyn PaginatedListStore>);
    fn shared<T: ObjectStore + Signer + PaginatedListStore>(store: T) -> Shared {
        let store = Arc::new(store);
        (store.clone(), store.clone(), store)
    }
    let (store, signer, pages) = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = configured!(AmazonS3Builder, AmazonS3ConfigKey);
            if let Some(endpoint) = &location.endpoint {
                // S3-compatible servers on their own host name serve buckets by path, not by subdomain.
                builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
            }
            shared(builder.build().map_err(invalid)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            shared(configured!(GoogleCloudStorageBuilder, GoogleConfigKey).build().map_err(invalid)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            shared(configured!(MicrosoftAzureBuilder, AzureConfigKey).build().map_err(invalid)?)
        }
        other => return Err(invalid(format!("{other:?} is not an object store thumbq supports"))),
    };
    Ok(Built { store, signer, pages, prefix })
}

/// An object-store error as the I/O error the [`FileStore`] trait speaks; the kind keeps what callers act on.
pub(super) fn to_io(e: object_store::Error) -> io::Error {
    let kind = match &e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            io::ErrorKind::PermissionDenied
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}
