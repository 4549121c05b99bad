//! The answer to an accepted upload, import or rendition request (`202`): what the API and its clients share.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Rendition, TaskId, TaskStatus, Variant};

/// The answer to an accepted upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The task's id.
    pub id: TaskId,
    /// The thumbnail's name, `<uuid>.<ext>`; with `format=auto`, `<uuid>` (its URL serves the best format the
    /// client accepts).
    #[schema(example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub name: String,
    /// `PENDING`; `SUCCESS` for a `dedupe=true` upload whose thumbnails were copied from an earlier task.
    pub status: TaskStatus,
    /// Absolute URL of the thumbnail: poll it, or long-poll it with `&wait=30` (`?wait=30` when it is not signed).
    /// With signed URLs on it carries `expires` and `sig`.
    #[schema(example = "http://127.0.0.1:8000/thumbnails/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11.jpg")]
    pub url: String,
    /// Absolute URL of the task's record.
    #[schema(example = "http://127.0.0.1:8000/tasks/6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
    pub status_url: String,
    /// With `format=auto`: each format the thumbnail is made in (the fallback first), with its own URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// With `preset` or `sizes`: each rendition with its file's name and URL (`name` and `url` above are the
    /// first rendition's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<Rendition>,
}
