//! A task's identity and the public name of its thumbnail: the only names a request can give a stored file.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{OutputFormat, RenditionName};

/// A task's identity: a random UUID, also the RabbitMQ `message_id` and the stem of the thumbnail's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid, example = "6f1c1c9e-2f4b-4f7e-9d43-3c2a4f0e8b11")]
pub struct TaskId(Uuid);

impl TaskId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id that is this UUID (a job item's, derived from its job and source).
    pub(crate) fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// Its last byte, random in a fresh id and a job's in the job's items: what picks the task's shard of a Redis
    /// Cluster ([`Keys`](crate::state_store::Keys)).
    pub fn spread(&self) -> u8 {
        self.0.as_bytes()[15]
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lower case: the one spelling used in keys, file names and URLs.
        self.0.hyphenated().fmt(f)
    }
}

/// A string that is not a task id in canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a task id: expected a lower-case hyphenated UUID")]
pub struct InvalidTaskId;

impl FromStr for TaskId {
    type Err = InvalidTaskId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical spelling, so one task has exactly one name (and one file).
        let uuid = Uuid::try_parse(s).map_err(|_| InvalidTaskId)?;
        let id = Self(uuid);
        if id.to_string() == s { Ok(id) } else { Err(InvalidTaskId) }
    }
}

/// A thumbnail's public name, `<uuid>.<ext>`, or `<uuid>-<rendition>.<ext>` for a rendition; parsing it is the
/// only way a request names a stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThumbnailName {
    /// The task that makes it.
    pub id: TaskId,
    /// Its format, which gives the extension.
    pub format: OutputFormat,
    /// The rendition it is, for a task of renditions.
    pub rendition: Option<RenditionName>,
}

impl ThumbnailName {
    /// The file of rendition `name` of task `id`, in `format`.
    pub fn of_rendition(id: TaskId, name: &RenditionName, format: OutputFormat) -> Self {
        Self { id, format, rendition: Some(name.clone()) }
    }

    /// The file task `id` is known by: its one thumbnail in `format`, or with renditions the first rendition's.
    pub fn primary(id: TaskId, format: OutputFormat, renditions: &[super::Rendition]) -> Self {
        match renditions.first() {
            Some(first) => Self::of_rendition(id, &first.name, first.args.format),
            None => Self { id, format, rendition: None },
        }
    }

    /// The same thumbnail named without its format.
    pub fn negotiated(&self) -> NegotiatedName {
        NegotiatedName { id: self.id, rendition: self.rendition.clone() }
    }
}

/// A thumbnail named without its format, `<uuid>` or `<uuid>-<rendition>`: the URL of a `format=auto` task that
/// serves the best format the client's `Accept` allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedName {
    /// The task that makes it.
    pub id: TaskId,
    /// The rendition it is, for a task of renditions.
    pub rendition: Option<RenditionName>,
}

impl NegotiatedName {
    /// The file of this thumbnail in `format`.
    pub fn in_format(&self, format: OutputFormat) -> ThumbnailName {
        ThumbnailName { id: self.id, format, rendition: self.rendition.clone() }
    }
}

impl fmt::Display for NegotiatedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rendition {
            Some(rendition) => write!(f, "{}-{rendition}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

impl FromStr for NegotiatedName {
    type Err = ();

    fn from_str(stem: &str) -> Result<Self, Self::Err> {
        // A canonical UUID is 36 characters; a rendition's name follows a '-'.
        let (id, rendition) = match stem.split_at_checked(36) {
            Some((id, "")) => (id, None),
            Some((id, rest)) => (id, Some(rest.strip_prefix('-').ok_or(())?.parse().map_err(|_| ())?)),
            None => return Err(()),
        };
        Ok(Self { id: id.parse().map_err(|_| ())?, rendition })
    }
}

impl fmt::Display for ThumbnailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rendition {
            Some(rendition) => write!(f, "{}-{rendition}.{}", self.id, self.format.extension()),
            None => write!(f, "{}.{}", self.id, self.format.extension()),
        }
    }
}

impl FromStr for ThumbnailName {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (stem, ext) = s.split_once('.').ok_or(())?;
        let format = OutputFormat::ALL.into_iter().find(|f| f.extension() == ext).ok_or(())?;
        Ok(stem.parse::<NegotiatedName>()?.in_format(format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_names_parse_only_in_canonical_form() {
        let id = TaskId::new();
        let name = ThumbnailName { id, format: OutputFormat::Jpeg, rendition: None };
        assert_eq!(name.to_string().parse::<ThumbnailName>(), Ok(name));
        let rendition = ThumbnailName { id, format: OutputFormat::Webp, rendition: Some("large_2".parse().unwrap()) };
        assert_eq!(rendition.to_string(), format!("{id}-large_2.webp"));
        assert_eq!(rendition.to_string().parse::<ThumbnailName>(), Ok(rendition.clone()));
        for bad in [
            "../../etc/passwd".to_owned(),
            format!("{id}"),
            format!("{id}.tiff"),
            format!("{id}.jpg.png"),
            format!("{}.png", id.to_string().to_uppercase()),
            format!("{}.png", id.to_string().replace('-', "")),
            format!("../{id}.png"),
            format!("{id}-.png"),
            format!("{id}-Large.png"),
            format!("{id}-a/b.png"),
            format!("{id}--a.png"),
            format!("{id}x-a.png"),
            format!("{id}-{}.png", "a".repeat(33)),
        ] {
            assert!(bad.parse::<ThumbnailName>().is_err(), "{bad} parsed");
        }
        let negotiated = rendition.negotiated();
        assert_eq!(negotiated.to_string(), format!("{id}-large_2"));
        assert_eq!(negotiated.to_string().parse::<NegotiatedName>(), Ok(negotiated.clone()));
        assert_eq!(negotiated.in_format(OutputFormat::Avif).to_string(), format!("{id}-large_2.avif"));
        for bad in [format!("{id}.png"), format!("{id}-"), format!("{id}x"), "../x".to_owned()] {
            assert!(bad.parse::<NegotiatedName>().is_err(), "{bad} parsed");
        }
    }
}
