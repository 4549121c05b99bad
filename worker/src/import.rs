//! The original of an import (`POST /thumbnails` with a JSON body): fetched from its URL through the address guard
//! or read from the import store by key, checked like an upload (size limit, sniffed format, pixel limit) and
//! stored as the task's original, after which the task goes on as an upload's would. A retry finds the original
//! stored and reads nothing again.

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{StatusCode, header};
use thumbq_common::{
    address_guard::{self as guard, Purpose},
    file_store::{ImportError, ImportStore},
    image_probe,
    settings::Settings,
    task::{ImageInfo, Import, TaskId},
};
use tracing::info;

use crate::{
    error::TaskError,
    outbound::{self, OutboundError},
    pipeline::PipelineError,
    state::WorkerState,
};

/// Redirects a fetch follows at most, each checked again by the guard.
pub const MAX_REDIRECTS: usize = 3;

/// What imports read through: the guarded HTTP client and the import store, built once.
pub struct Importer {
    client: reqwest::Client,
    store: Option<ImportStore>,
    allow_private: bool,
}

/// Why an import's source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL, or one of its redirects, is not allowed. Permanent.
    #[error("the source is refused: {0}")]
    Refused(String),
    /// `404`/`410`, or no object with the key. Permanent.
    #[error("the source was not found: {0}")]
    NotFound(String),
    /// Over the upload size limit. Permanent.
    #[error("the source is larger than the upload limit of {0} bytes")]
    TooLarge(u64),
    /// The server answered another error status: permanent for a 4xx (but 408 and 429), else transient.
    #[error("the source's server answered {status}")]
    Status {
        /// Its status.
        status: u16,
    },
    /// No answer, a broken connection or a timeout. Transient.
    #[error("the source could not be read: {0}")]
    Unreachable(String),
    /// The import store failed or did not answer in time. Transient.
    #[error("the import store failed: {0}")]
    ImportStore(String),
    /// An import by key with no `THUMBQ_IMPORT_URL` on this worker. Permanent.
    #[error("this worker has no import store (THUMBQ_IMPORT_URL)")]
    NoImportStore,
}

impl SourceError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status } => *status >= 500 || *status == 408 || *status == 429,
            Self::Unreachable(_) | Self::ImportStore(_) => true,
            Self::Refused(_) | Self::NotFound(_) | Self::TooLarge(_) | Self::NoImportStore => false,
        }
    }
}

impl Importer {
    /// The importer these settings describe; fails when the import folder is missing.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let import = &settings.import;
        let redirects = outbound::guarded_redirects(MAX_REDIRECTS, import.allow_private, Purpose::Fetch);
        let client = outbound::client(import.allow_private, Purpose::Fetch, redirects, import.fetch_timeout);
        let store = import.location.as_ref().map(|l| ImportStore::open(l, settings.store.timeout)).transpose()?;
        Ok(Self { client, store, allow_private: import.allow_private })
    }

    /// The import store, if this worker has one (`THUMBQ_IMPORT_URL`).
    pub fn store(&self) -> Option<&ImportStore> {
        self.store.as_ref()
    }

    /// Reads `import`'s bytes, at most `max` of them.
    async fn read(&self, import: &Import, max: u64) -> Result<Vec<u8>, SourceError> {
        match import {
            Import::Source(url) => self.fetch(url, max).await,
            Import::Key(key) => {
                let store = self.store.as_ref().ok_or(SourceError::NoImportStore)?;
                store.read(key, max).await.map_err(|e| match e {
                    ImportError::BadKey { .. } => SourceError::Refused(e.to_string()),
                    ImportError::NotFound(_) => SourceError::NotFound(e.to_string()),
                    ImportError::TooLarge { max, .. } => SourceError::TooLarge(max),
                    ImportError::Store(e) => SourceError::ImportStore(e.to_string()),
                })
            }
        }
    }

    /// GETs `url` through the guard, refusing a body over `max` bytes from its `Content-Length` or as it streams.
    async fn fetch(&self, url: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        // Checked again here: a literal address never reaches the resolver, and the settings may have changed.
        let url = guard::check_url(url, self.allow_private, Purpose::Fetch)
            .map_err(|e| SourceError::Refused(e.to_string()))?;
        let failed = |e: reqwest::Error| match outbound::classify(&e) {
            OutboundError::Refused(reason) => SourceError::Refused(reason),
            OutboundError::Unreachable(reason) => SourceError::Unreachable(reason),
        };
        let response = self
            .client
            .get(url)
            .header(header::USER_AGENT, concat!("thumbq/", env!("CARGO_PKG_VERSION")))
            .header(header::ACCEPT, "image/*, application/pdf, video/*;q=0.8, */*;q=0.5")
            .send()
            .await
            .map_err(failed)?;
        match response.status() {
            status if status.is_success() => {}
            // Every redirect to an http(s) URL is followed (or refused by the policy): one that arrives here names
            // something else (`file:`, no location at all).
            status if status.is_redirection() => {
                let location = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok());
                let to = location.map_or_else(|| "nowhere".to_owned(), |l| format!("{l:?}"));
                return Err(SourceError::Refused(format!("{} answered {status}, a redirect to {to}", response.url())));
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(SourceError::NotFound(format!("{} answered {}", response.url(), response.status())));
            }
            status => return Err(SourceError::Status { status: status.as_u16() }),
        }
        if response.content_length().is_some_and(|length| length > max) {
            return Err(SourceError::TooLarge(max));
        }
        let mut bytes = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(failed)?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(SourceError::TooLarge(max));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// The original of task `id`, read from its `import` and stored; with what it is, for the record's `source`.
pub async fn fetch_original(ctx: &WorkerState, id: TaskId, import: &Import) -> Result<(Vec<u8>, ImageInfo), TaskError> {
    let started = std::time::Instant::now();
    let bytes = ctx.importer.read(import, ctx.settings.limits.max_upload_bytes as u64).await?;
    // Refused like an upload, before it is stored: empty, not an image, an unsupported format, too many pixels.
    let (bytes, info) = describe(ctx, bytes).await?;
    let shared = Bytes::from(bytes);
    ctx.store.put_original_whole(id, shared.clone()).await?;
    info!(source = import.target(), bytes = shared.len(), ms = started.elapsed().as_millis() as u64, "imported");
    // The store's copy is gone: this one is the only owner again, and becomes a Vec without a copy.
    Ok((Vec::from(shared), info))
}

/// What an original is (format, size, length), probed as the API probes an upload.
pub async fn describe(ctx: &WorkerState, bytes: Vec<u8>) -> Result<(Vec<u8>, ImageInfo), TaskError> {
    let max_pixels = ctx.settings.limits.max_pixels;
    let (bytes, probe) = tokio::task::spawn_blocking(move || {
        let probe = image_probe::probe(&bytes, max_pixels);
        (bytes, probe)
    })
    .await
    .map_err(|e| TaskError::Crashed(e.to_string()))?;
    let info = probe.map_err(PipelineError::Probe)?.info(bytes.len());
    Ok((bytes, info))
}
