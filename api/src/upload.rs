//! The uploaded image, from either request shape the API accepts: a `multipart/form-data` file field named `image`,
//! or the raw request body with an `image/*`, `video/*`, `application/pdf` (or `application/octet-stream`) content type.
//!
//! Extracting an upload first checks that the caller may upload (see [`Caller`]). The body is streamed, never held
//! whole: the handler reads the first bytes ([`Upload::head`]) until the image's
//! header can be probed, then hands the head and the rest of the body to the file store as one stream of chunks
//! ([`Upload::into_chunks`]), which writes them as they arrive. Only a format whose header is not in its first
//! [`PROBE_WINDOW`] bytes (a TIFF whose directory sits at its end) is read whole before the probe. Before any of the
//! body is read, the upload takes its share of the API's upload memory (`THUMBQ_UPLOAD_MEMORY_MB`): twice the probe
//! window, and more only if the head outgrows it.

use std::{io, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Request},
    http::{HeaderValue, header},
};
use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use thumbq_common::{
    api_key::Scope,
    file_store::Chunks,
    image_probe::{self, Probe, ProbeError},
};
use tokio::sync::OwnedSemaphorePermit;

use crate::{
    caller::Caller,
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// The multipart field that carries the image.
pub const FIELD: &str = "image";

/// Room for multipart boundaries and part headers on top of the image itself.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The first bytes the header is looked for in. Every accepted format but TIFF puts its header (dimensions and,
/// for JPEG, the metadata segments before them) at the start; a JPEG's EXIF and ICC segments rarely pass 256 KiB.
pub const PROBE_WINDOW: usize = 1 << 20;

/// The head sizes at which the probe is tried: most images answer at the first.
const PROBE_AT: [usize; 3] = [64 << 10, 256 << 10, PROBE_WINDOW];

/// How long an upload waits for room in the upload memory before it is answered `503`.
const MEMORY_WAIT: Duration = Duration::from_secs(10);

/// How much of a refused upload's body is read and dropped so that its client, still sending, reads the answer
/// instead of a reset connection.
const DRAIN_LIMIT: usize = 64 << 20;

/// An upload being received: its body, what has been read of it, and its share of the upload memory.
pub struct Upload {
    body: BoxStream<'static, Result<Bytes, ApiError>>,
    /// Bytes read so far.
    received: usize,
    max: usize,
    announced: Option<usize>,
    reservation: OwnedSemaphorePermit,
    /// `THUMBQ_UPLOAD_MEMORY_MB` in KiB.
    budget_kib: u32,
    whole_reserved: bool,
}

/// The first bytes of an upload, and what its header says.
pub struct Head {
    /// The bytes read so far: the first chunks, or all of a small upload.
    pub bytes: Vec<u8>,
    /// The probe of the header.
    pub probe: Probe,
}

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Who may upload is settled before a byte is read or any upload memory is taken: a client without the
        // `upload` scope gets its 401 or 403 at once and holds nothing.
        let caller = req.extensions().get::<Caller>().ok_or_else(|| ApiError::Internal("no caller".into()))?;
        caller.require(Scope::Upload)?;
        let max = state.settings.limits.max_upload_bytes;
        let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        if announced.is_some_and(|length: usize| length > max + MULTIPART_OVERHEAD) {
            return Err(too_large(max));
        }
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let window = announced.unwrap_or(PROBE_WINDOW).min(PROBE_WINDOW);
        let reservation = reserve(state, 2 * window).await?;
        let body = if content_type.starts_with("multipart/form-data") {
            let header = req.headers().get(header::CONTENT_TYPE).cloned();
            image_field(header.as_ref(), req.into_body(), max).await?
        } else if ["image/", "video/", "application/pdf", "application/octet-stream"]
            .iter()
            .any(|t| content_type.starts_with(t))
        {
            req.into_body().into_data_stream().map_err(|e| body_error(&e)).boxed()
        } else if content_type.is_empty() {
            return Err(ApiError::BadRequest(ErrorCode::MissingImage, format!("no Content-Type: {}", how_to_upload())));
        } else {
            return Err(ApiError::UnsupportedMediaType(
                ErrorCode::UnsupportedContentType,
                format!("Content-Type {content_type} is not accepted: {}", how_to_upload()),
            ));
        };
        let budget_kib = state.settings.limits.upload_memory_mb.saturating_mul(1024);
        // Fused: a refusal drains what is left, perhaps after the end was already read.
        let body = body.fuse().boxed();
        Ok(Self { body, received: 0, max, announced, reservation, budget_kib, whole_reserved: false })
    }
}

impl Upload {
    /// The next piece of the body, counted against the size limit; `None` at its end.
    async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        let Some(chunk) = self.body.next().await.transpose()? else { return Ok(None) };
        self.received += chunk.len();
        if self.received > self.max {
            return Err(too_large(self.max));
        }
        Ok(Some(chunk))
    }

    /// Reads the body until the header in its first bytes can be probed (on a blocking thread unless the probe is
    /// quick, see [`image_probe::is_quick`]); a header not found in the [`PROBE_WINDOW`] is looked for in the whole
    /// upload.
    pub async fn head(&mut self, max_pixels: u64) -> Result<Head, ApiError> {
        let mut bytes = Vec::with_capacity(PROBE_AT[0]);
        let mut steps = PROBE_AT.iter();
        let mut probe_at = steps.next().copied();
        loop {
            let chunk = self.next().await?;
            let ended = chunk.is_none();
            if let Some(chunk) = chunk {
                if bytes.len() + chunk.len() > PROBE_WINDOW && bytes.len() <= PROBE_WINDOW {
                    self.reserve_whole().await?;
                }
                bytes.extend_from_slice(&chunk);
            }
            if !ended && probe_at.is_none_or(|at| bytes.len() < at) {
                continue;
            }
            probe_at = steps.next().copied();
            let probed = if image_probe::is_quick(&bytes) {
                image_probe::probe(&bytes, max_pixels)
            } else {
                let (header, probed) = tokio::task::spawn_blocking(move || {
                    let probed = image_probe::probe(&bytes, max_pixels);
                    (bytes, probed)
                })
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
                bytes = header;
                probed
            };
            match probed {
                Ok(probe) => return Ok(Head { bytes, probe }),
                // A header cut short by the window: read on.
                Err(ProbeError::Unreadable { .. }) if !ended => {}
                Err(e) => return Err(self.refuse(e.into()).await),
            }
        }
    }

    /// The head and the rest of the body, as the chunks the file store writes. Errors in the stream (the client
    /// went away, the upload passed its limit) carry their [`ApiError`]: see [`refusal`].
    pub fn into_chunks(mut self, head: Vec<u8>) -> (Chunks<'static>, OwnedSemaphorePermit) {
        let reservation = std::mem::replace(&mut self.reservation, empty_permit());
        let first = futures_util::stream::once(async move { Ok(Bytes::from(head)) });
        let rest = futures_util::stream::try_unfold(self, |mut upload| async move {
            let chunk = upload.next().await.map_err(|e| io::Error::other(Refusal(e)))?;
            Ok(chunk.map(|chunk| (chunk, upload)))
        });
        (first.chain(rest).boxed(), reservation)
    }

    /// Answers a refused upload: reads what is left of the body (up to [`DRAIN_LIMIT`], into nothing) so that a
    /// client still sending gets the answer rather than a reset connection.
    pub async fn refuse(&mut self, error: ApiError) -> ApiError {
        let drain = async {
            while self.received < DRAIN_LIMIT {
                let Some(Ok(chunk)) = self.body.next().await else { break };
                self.received += chunk.len();
            }
        };
        let _ = tokio::time::timeout(MEMORY_WAIT, drain).await;
        error
    }

    /// Takes the share of the upload memory a whole upload needs (once): when the head outgrows the probe window
    /// (the whole upload may have to be read before its header is found), and for a file store that holds an
    /// original in memory until it is stored.
    pub async fn reserve_whole(&mut self) -> Result<(), ApiError> {
        if std::mem::replace(&mut self.whole_reserved, true) {
            return Ok(());
        }
        let whole = self.announced.unwrap_or(self.max).min(self.max + MULTIPART_OVERHEAD);
        let more = 2 * whole.saturating_sub(PROBE_WINDOW);
        let extra = reserve_with(&self.reservation, more, self.budget_kib).await?;
        self.reservation.merge(extra);
        Ok(())
    }
}

/// The error an upload's chunk stream failed with, carried through the file store's `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(ApiError);

/// What a failed store write of an upload means: the upload's own refusal (too large, the client went away) when
/// that is what stopped it; otherwise `None`, and the store is to blame.
pub fn refusal(error: io::Error) -> Result<ApiError, io::Error> {
    match error.get_ref().and_then(|inner| inner.downcast_ref::<Refusal>()) {
        Some(_) => {
            let inner = error.into_inner().expect("checked above");
            Ok(inner.downcast::<Refusal>().map(|r| r.0).unwrap_or_else(|e| ApiError::Internal(e.to_string())))
        }
        None => Err(error),
    }
}

/// Waits (at most [`MEMORY_WAIT`]) for `bytes` of room in the upload memory; never more than the whole budget, so
/// the largest upload still fits alone.
async fn reserve(state: &AppState, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let kib = kib.min(state.settings.limits.upload_memory_mb.saturating_mul(1024));
    acquire(state.upload_memory.clone(), kib).await
}

/// [`reserve`] for an upload holding `permit` already: never more, together, than the whole budget of `budget_kib`.
async fn reserve_with(
    permit: &OwnedSemaphorePermit,
    bytes: usize,
    budget_kib: u32,
) -> Result<OwnedSemaphorePermit, ApiError> {
    let held = u32::try_from(permit.num_permits()).unwrap_or(u32::MAX);
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX).min(budget_kib.saturating_sub(held));
    acquire(permit.semaphore().clone(), kib).await
}

async fn acquire(
    semaphore: std::sync::Arc<tokio::sync::Semaphore>,
    kib: u32,
) -> Result<OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(MEMORY_WAIT, semaphore.acquire_many_owned(kib)).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(closed)) => Err(ApiError::Internal(closed.to_string())),
        Err(_) => Err(ApiError::Busy(
            ErrorCode::UploadsBusy,
            "too many uploads in flight (THUMBQ_UPLOAD_MEMORY_MB); try again shortly".into(),
        )),
    }
}

fn empty_permit() -> OwnedSemaphorePermit {
    std::sync::Arc::new(tokio::sync::Semaphore::new(0)).try_acquire_many_owned(0).expect("zero permits are free")
}

/// The `image` field's chunks, naming what was sent instead when it is missing. The fields before it are skipped
/// unread (multer drops their bytes as it goes).
async fn image_field(
    content_type: Option<&HeaderValue>,
    body: Body,
    max: usize,
) -> Result<BoxStream<'static, Result<Bytes, ApiError>>, ApiError> {
    let content_type = content_type.and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| ApiError::BadRequest(ErrorCode::MalformedBody, format!("malformed multipart body: {e}")))?;
    let limits = multer::SizeLimit::new().whole_stream((max + MULTIPART_OVERHEAD) as u64);
    let mut multipart = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut seen = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| multipart_error(&e, max))? {
        let name = field.name().unwrap_or("").to_owned();
        if name == FIELD {
            // The field reads through state it shares with `multipart`: keep both alive in the stream.
            let chunks = field.map_err(move |e| multipart_error(&e, max));
            return Ok(futures_util::stream::unfold((chunks, multipart), |(mut chunks, multipart)| async move {
                chunks.next().await.map(|chunk| (chunk, (chunks, multipart)))
            })
            .boxed());
        }
        seen.push(name);
    }
    let found = if seen.is_empty() { "no fields".to_owned() } else { format!("field(s) {}", seen.join(", ")) };
    Err(ApiError::BadRequest(ErrorCode::MissingImage, format!("missing multipart field `{FIELD}` (found {found})")))
}

fn multipart_error(e: &multer::Error, max: usize) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(max),
        multer::Error::StreamReadFailed(inner) => {
            ApiError::BadRequest(ErrorCode::UploadCutOff, format!("the upload was cut off: {inner}"))
        }
        other => ApiError::BadRequest(ErrorCode::MalformedBody, format!("malformed multipart body: {other}")),
    }
}

fn body_error(e: &axum::Error) -> ApiError {
    ApiError::BadRequest(ErrorCode::UploadCutOff, format!("the upload was cut off: {e}"))
}

/// The `413` of an upload over `max` bytes.
pub fn too_large(max: usize) -> ApiError {
    ApiError::TooLarge(format!("the upload is larger than the limit of {max} bytes"))
}

fn how_to_upload() -> String {
    format!(
        "send the image as multipart/form-data field `{FIELD}`, or as the raw body with an image/*, video/* or \
         application/pdf Content-Type"
    )
}
