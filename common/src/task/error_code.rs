//! Why a task failed, for a program: the stable `error_code` of a task's record, beside its `error` (the message for
//! people) and its coarse `error_kind`. As with the API's error codes, one code per situation, never two situations
//! under one code, and a published code keeps its meaning; docs/api.md lists them (a test checks it). The worker
//! picks the code in one place (`TaskError::code` in `worker/src/error.rs`); the kind is derived from it here.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::FailureKind;

/// Why a task's latest attempt failed (RETRY) or why the task ended (FAILURE). Each variant's doc names its
/// `FailureKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskErrorCode {
    /// invalid_image: the original has zero bytes.
    EmptyImage,
    /// invalid_image: the original's first bytes match no image format.
    NotAnImage,
    /// invalid_image: an image format thumbq does not accept.
    UnsupportedFormat,
    /// invalid_image: the image's header cannot be read.
    UnreadableImage,
    /// invalid_image: more pixels than `THUMBQ_MAX_PIXELS` (or, for `animated=true`, frames × pixels over
    /// `THUMBQ_MAX_ANIMATION_PIXELS`).
    TooManyPixels,
    /// invalid_image: the image data is corrupt or truncated.
    CorruptImage,
    /// internal: the image alone needs more memory to decode than the worker's whole budget
    /// (`THUMBQ_WORKER_MEMORY_MB`).
    DecoderLimit,
    /// time_limit: the task ran past `THUMBQ_TASK_TIME_LIMIT_SECS`.
    TimeLimit,
    /// internal: the uploaded original is not in the file store.
    OriginalMissing,
    /// internal: the thumbnail could not be resampled or encoded.
    EncodeFailed,
    /// internal: the image pipeline crashed on this input.
    PipelineCrashed,
    /// internal: the file store could not be read or written (retried; the code of the last attempt stays).
    StoreFailed,
    /// internal: Redis could not be reached.
    StateStoreFailed,
    /// internal: the task's record in Redis is unreadable.
    CorruptRecord,
    /// internal: the task's message cannot be run (not a task, or another envelope version); dead-lettered.
    InvalidMessage,
    /// source: an import's URL, or a redirect it gave, is not allowed (an internal address, another scheme), or it
    /// redirected more than 3 times.
    FetchRefused,
    /// source: an import's URL answered `404` or `410`, or its key names no object of the import store.
    SourceNotFound,
    /// source: an import's source is larger than `THUMBQ_MAX_UPLOAD_BYTES`.
    SourceTooLarge,
    /// source: an import's source could not be read: its server answered another error, could not be reached or
    /// ran past `THUMBQ_FETCH_TIMEOUT_MS`, or the import store failed (retried unless the server answered a 4xx).
    FetchFailed,
}

impl TaskErrorCode {
    /// Every code, in declaration order (the order of the table in docs/api.md).
    pub const ALL: [Self; 19] = [
        Self::EmptyImage,
        Self::NotAnImage,
        Self::UnsupportedFormat,
        Self::UnreadableImage,
        Self::TooManyPixels,
        Self::CorruptImage,
        Self::DecoderLimit,
        Self::TimeLimit,
        Self::OriginalMissing,
        Self::EncodeFailed,
        Self::PipelineCrashed,
        Self::StoreFailed,
        Self::StateStoreFailed,
        Self::CorruptRecord,
        Self::InvalidMessage,
        Self::FetchRefused,
        Self::SourceNotFound,
        Self::SourceTooLarge,
        Self::FetchFailed,
    ];

    /// The snake-case name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyImage => "empty_image",
            Self::NotAnImage => "not_an_image",
            Self::UnsupportedFormat => "unsupported_format",
            Self::UnreadableImage => "unreadable_image",
            Self::TooManyPixels => "too_many_pixels",
            Self::CorruptImage => "corrupt_image",
            Self::DecoderLimit => "decoder_limit",
            Self::TimeLimit => "time_limit",
            Self::OriginalMissing => "original_missing",
            Self::EncodeFailed => "encode_failed",
            Self::PipelineCrashed => "pipeline_crashed",
            Self::StoreFailed => "store_failed",
            Self::StateStoreFailed => "state_store_failed",
            Self::CorruptRecord => "corrupt_record",
            Self::InvalidMessage => "invalid_message",
            Self::FetchRefused => "fetch_refused",
            Self::SourceNotFound => "source_not_found",
            Self::SourceTooLarge => "source_too_large",
            Self::FetchFailed => "fetch_failed",
        }
    }

    /// The coarse class, which decides the HTTP status of the task's download: the upload's own fault or its
    /// source's (422) or the service's (500).
    pub fn kind(self) -> FailureKind {
        match self {
            Self::EmptyImage
            | Self::NotAnImage
            | Self::UnsupportedFormat
            | Self::UnreadableImage
            | Self::TooManyPixels
            | Self::CorruptImage
            // Over a limit, like too_many_pixels: the image, not the service, is what no attempt can get past.
            | Self::DecoderLimit => FailureKind::InvalidImage,
            Self::TimeLimit => FailureKind::TimeLimit,
            Self::OriginalMissing
            | Self::EncodeFailed
            | Self::PipelineCrashed
            | Self::StoreFailed
            | Self::StateStoreFailed
            | Self::CorruptRecord
            | Self::InvalidMessage => FailureKind::Internal,
            Self::FetchRefused | Self::SourceNotFound | Self::SourceTooLarge | Self::FetchFailed => FailureKind::Source,
        }
    }

    /// Reads an optional code, taking one this version does not know (written by a newer worker during a rolling
    /// upgrade) as none: the rest of the record must still read. For `#[serde(deserialize_with)]`.
    pub fn lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Self>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.and_then(|name| name.parse().ok()))
    }
}

impl fmt::Display for TaskErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskErrorCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|code| code.as_str() == s).ok_or_else(|| format!("unknown task error code {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_parse_back_and_each_is_in_the_docs_table_with_its_kind() {
        let docs = include_str!("../../../docs/api.md");
        let mut seen = std::collections::HashSet::new();
        for code in TaskErrorCode::ALL {
            let name = code.as_str();
            assert_eq!(serde_json::to_value(code).unwrap(), name, "serde and as_str agree");
            assert_eq!(name.parse::<TaskErrorCode>(), Ok(code));
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
            assert!(seen.insert(name), "{name} twice");
            let row = format!("| `{name}` | `{}` |", code.kind().as_str());
            assert!(docs.contains(&row), "docs/api.md's task error code table lacks the row {row}");
        }
        assert!("invalid_image".parse::<TaskErrorCode>().is_err(), "a kind is not a code");
    }

    #[test]
    fn a_code_this_version_does_not_know_reads_as_none() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "TaskErrorCode::lenient")]
            code: Option<TaskErrorCode>,
        }
        let read = |json: &str| serde_json::from_str::<Holder>(json).unwrap().code;
        assert_eq!(read(r#"{"code": "corrupt_image"}"#), Some(TaskErrorCode::CorruptImage));
        assert_eq!(read(r#"{"code": "a_code_from_the_future"}"#), None);
        assert_eq!(read(r#"{"code": null}"#), None);
        assert_eq!(read("{}"), None);
    }
}
