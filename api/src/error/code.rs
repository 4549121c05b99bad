//! The stable, machine-readable `code` of every error answer (pict-rs's `ErrorCode`): clients and tests branch on
//! codes, people read messages. One code per situation, never two situations under one code; a code, once
//! published, keeps its meaning. docs/api.md lists them all, and the OpenAPI document carries them as an enum.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a request was refused, or failed. Each variant's doc names its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a parameter's value is out of range, malformed, or meaningless with the others.
    InvalidParameter,
    /// 400: a query parameter the route does not know.
    UnknownParameter,
    /// 400: the path names no thumbnail (`<uuid>.<ext>` or `<uuid>-<rendition>.<ext>`).
    InvalidName,
    /// 400: the path's task id is not a lower-case hyphenated UUID.
    InvalidTaskId,
    /// 400: a listing's cursor was not handed out by the API.
    InvalidCursor,
    /// 400: `preset` names no preset of this service.
    UnknownPreset,
    /// 400: one rendition is asked for twice.
    DuplicateRendition,
    /// 400: more renditions than one upload may ask for.
    TooManyRenditions,
    /// 400: the renditions asked for would cost more than `THUMBQ_MAX_TASK_WORK_MS`.
    TooMuchWork,
    /// 400: `callback_url` is not an http(s) URL the webhook guard allows.
    CallbackUrlRefused,
    /// 400: `callback_url` on a service without `THUMBQ_WEBHOOK_SECRET`.
    WebhooksDisabled,
    /// 400: no image in the request (no `image` field, no Content-Type, or zero bytes).
    MissingImage,
    /// 400: the multipart body is malformed, or a JSON body is not the JSON the route takes.
    MalformedBody,
    /// 400: an import's `source` is not an http(s) URL the fetch guard allows.
    SourceRefused,
    /// 400: an import's `key` would leave the import store's prefix (`..`, absolute) or is not a key.
    InvalidImportKey,
    /// 400: an import by `key` on a service without `THUMBQ_IMPORT_URL`.
    ImportsDisabled,
    /// 400: the path's job id is not a lower-case hyphenated UUID.
    InvalidJobId,
    /// 400: the client stopped sending before the upload's end.
    UploadCutOff,
    /// 401: no API key.
    MissingKey,
    /// 401: an unknown, revoked or malformed API key.
    InvalidKey,
    /// 403: the key lacks the scope this needs.
    MissingScope,
    /// 403: a write from a page on another site, without a key.
    CrossSite,
    /// 403: signed URLs are on and this one is unsigned or its signature is wrong.
    InvalidSignature,
    /// 403: the signed URL has expired.
    UrlExpired,
    /// 404: no such job (never existed, or another key's).
    JobNotFound,
    /// 404: no such task (never existed, expired, or another key's).
    TaskNotFound,
    /// 404: no such thumbnail (never made, erased, expired, or not one of its task's files).
    ThumbnailNotFound,
    /// 404: no such route.
    RouteNotFound,
    /// 404: the task has no dead letter to replay.
    NoDeadLetter,
    /// 404: the task was erased; its dead letter was dropped.
    TaskErased,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 408: the request took longer than `THUMBQ_REQUEST_TIMEOUT_SECS`.
    RequestTimeout,
    /// 409: the job has ended (DONE or CANCELLED) and cannot be paused, resumed or cancelled, or was cancelled and
    /// cannot retry its failures.
    JobEnded,
    /// 409: the task has finished (SUCCESS or FAILURE).
    AlreadyFinished,
    /// 409: the task was cancelled; its dead letter was dropped.
    TaskCancelled,
    /// 409: the task's original was not kept, so no renditions can be made from it.
    OriginalNotKept,
    /// 409: the first request with this `Idempotency-Key` is still being stored.
    IdempotencyInProgress,
    /// 413: the upload is larger than `THUMBQ_MAX_UPLOAD_BYTES`.
    TooLarge,
    /// 414: the URI is longer than the limit.
    UriTooLong,
    /// 415: the upload's first bytes match no image format.
    NotAnImage,
    /// 415: an image format thumbq does not accept.
    UnsupportedFormat,
    /// 415: a Content-Type that is neither multipart/form-data nor an image.
    UnsupportedContentType,
    /// 421: keys are off and the request names a host this API does not answer to.
    HostNotAllowed,
    /// 422: the image's header cannot be read.
    UnreadableImage,
    /// 422: more pixels than `THUMBQ_MAX_PIXELS`.
    TooManyPixels,
    /// 422: the `Idempotency-Key` was used for another request (other parameters or another image).
    IdempotencyMismatch,
    /// 429: over the rate limit.
    RateLimited,
    /// 429: the key's storage quota is taken by its unfinished tasks.
    OverQuota,
    /// 429: too many open connections from one address (`THUMBQ_MAX_CONNECTIONS_PER_CLIENT`).
    TooManyConnections,
    /// 431: the request's headers are larger than the limit.
    HeadersTooLarge,
    /// 500: a fault of the service; its log has the cause.
    Internal,
    /// 503: RabbitMQ, Redis or the file store is unavailable.
    ServiceUnavailable,
    /// 503: the work queue is full (`THUMBQ_MAX_QUEUE_DEPTH`).
    QueueFull,
    /// 503: too many uploads are being read (`THUMBQ_UPLOAD_MEMORY_MB`).
    UploadsBusy,
}

impl ErrorCode {
    /// Every code, in declaration order (the order of the table in docs/api.md).
    pub const ALL: [Self; 54] = [
        Self::InvalidParameter,
        Self::UnknownParameter,
        Self::InvalidName,
        Self::InvalidTaskId,
        Self::InvalidCursor,
        Self::UnknownPreset,
        Self::DuplicateRendition,
        Self::TooManyRenditions,
        Self::TooMuchWork,
        Self::CallbackUrlRefused,
        Self::WebhooksDisabled,
        Self::MissingImage,
        Self::MalformedBody,
        Self::SourceRefused,
        Self::InvalidImportKey,
        Self::ImportsDisabled,
        Self::InvalidJobId,
        Self::UploadCutOff,
        Self::MissingKey,
        Self::InvalidKey,
        Self::MissingScope,
        Self::CrossSite,
        Self::InvalidSignature,
        Self::UrlExpired,
        Self::JobNotFound,
        Self::TaskNotFound,
        Self::ThumbnailNotFound,
        Self::RouteNotFound,
        Self::NoDeadLetter,
        Self::TaskErased,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::JobEnded,
        Self::AlreadyFinished,
        Self::TaskCancelled,
        Self::OriginalNotKept,
        Self::IdempotencyInProgress,
        Self::TooLarge,
        Self::UriTooLong,
        Self::NotAnImage,
        Self::UnsupportedFormat,
        Self::UnsupportedContentType,
        Self::HostNotAllowed,
        Self::UnreadableImage,
        Self::TooManyPixels,
        Self::IdempotencyMismatch,
        Self::RateLimited,
        Self::OverQuota,
        Self::TooManyConnections,
        Self::HeadersTooLarge,
        Self::Internal,
        Self::ServiceUnavailable,
        Self::QueueFull,
        Self::UploadsBusy,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(code: ErrorCode) -> String {
        serde_json::to_value(code).unwrap().as_str().unwrap().to_owned()
    }

    #[test]
    fn codes_are_distinct_snake_case_and_each_is_in_the_docs_table() {
        let docs = include_str!("../../../docs/api.md");
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let name = name(code);
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
            assert!(seen.insert(name.clone()), "{name} twice");
            assert!(docs.contains(&format!("| `{name}` |")), "{name} is missing from docs/api.md's table");
        }
    }
}
