//! The message published to RabbitMQ for one attempt of one task, and what it asks for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Fit, Import, OutputFormat, Rendition, RenditionName, TaskId, ThumbnailName};

/// Version of [`TaskEnvelope`]'s JSON layout; a worker refuses envelopes of another version.
pub const ENVELOPE_VERSION: u32 = 1;

/// The one task name thumbq runs; a worker refuses envelopes naming another task.
pub const RESIZE_TASK: &str = "thumbq.resize";

/// A point of the image as displayed, in fractions of its width and height (0..=1 each, from the top left).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Focus {
    /// From the left edge (0) to the right edge (1).
    pub x: f32,
    /// From the top edge (0) to the bottom edge (1).
    pub y: f32,
}

/// What a task was asked to make.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResizeArgs {
    /// Thumbnail width in pixels (1..=2048).
    pub width: u32,
    /// Thumbnail height in pixels (1..=2048).
    pub height: u32,
    /// How the image is fitted into width×height.
    pub fit: Fit,
    /// The thumbnail's format.
    pub format: OutputFormat,
    /// Quality of a lossy output, 1..=100 (JPEG, lossy WebP); `None`: the format's default
    /// ([`ResizeArgs::quality`]). Absent from messages of earlier versions, which mean the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// WebP only: lossless instead of lossy. Absent (false) in messages of earlier versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lossless: bool,
    /// `cover` only: the point the crop is centred on, as near as the image's edges allow; `None`: the centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<Focus>,
    /// `cover` only: centre the crop where an attention measure finds the subject (`focus=auto`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_focus: bool,
    /// WebP and GIF only: keep an animated source's frames, delays and loop count (`animated=true`); otherwise, and
    /// for a still source, the first frame.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
    /// `format=auto`: also made as AVIF and WebP, from the same decode; `format` is the fallback for clients that
    /// take neither ([`ResizeArgs::variants`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
}

impl ResizeArgs {
    /// Largest thumbnail side in pixels.
    pub const MAX_SIDE: u32 = 2048;
    /// JPEG's default quality: visually lossless at thumbnail sizes.
    pub const JPEG_QUALITY: u8 = 85;
    /// Lossy WebP's default quality (libwebp's own `cwebp` default is 75): close to JPEG 85 at a smaller size.
    pub const WEBP_QUALITY: u8 = 80;
    /// AVIF's default quality (ravif's scale): within 1 dB of JPEG 85 at a third of its size (example photo at
    /// 200x200: 37.9 dB in 4.1 KB against 38.8 dB in 12.8 KB; see `make bench`).
    pub const AVIF_QUALITY: u8 = 80;

    /// A thumbnail of `width`×`height`, fitted by `fit`, as `format` at the format's default quality.
    pub const fn new(width: u32, height: u32, fit: Fit, format: OutputFormat) -> Self {
        Self {
            width,
            height,
            fit,
            format,
            quality: None,
            lossless: false,
            focus: None,
            auto_focus: false,
            animated: false,
            auto: false,
        }
    }

    /// The formats served before the fallback of `format=auto`, best first.
    pub const AUTO_FORMATS: [OutputFormat; 2] = [OutputFormat::Avif, OutputFormat::Webp];

    /// Every file this output is made as: itself, and with `format=auto` its AVIF and WebP variants after it (the
    /// fallback first, so that it carries the placeholder and is the record's result).
    pub fn variants(&self) -> Vec<Self> {
        let mut variants = vec![*self];
        if self.auto {
            variants.extend(Self::AUTO_FORMATS.map(|format| Self {
                format,
                quality: self.quality.filter(|_| format.is_lossy()),
                ..*self
            }));
        }
        variants
    }

    /// The quality a lossy encoder uses for these arguments.
    pub fn quality(&self) -> u8 {
        self.quality.unwrap_or(match self.format {
            OutputFormat::Webp => Self::WEBP_QUALITY,
            OutputFormat::Avif => Self::AVIF_QUALITY,
            OutputFormat::Jpeg | OutputFormat::Png | OutputFormat::Gif => Self::JPEG_QUALITY,
        })
    }
}

/// The message published to RabbitMQ for one attempt of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEnvelope {
    /// Layout version, [`ENVELOPE_VERSION`].
    pub version: u32,
    /// The task's id.
    pub id: TaskId,
    /// The task's name, [`RESIZE_TASK`].
    pub task: String,
    /// What to make: the one thumbnail, or with renditions the first rendition's arguments.
    pub args: ResizeArgs,
    /// The renditions to make from one decode, each its own file; empty for a task of one thumbnail. Absent in
    /// messages of earlier versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<Rendition>,
    /// Where the record is POSTed when the task ends; absent in messages of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Whether the original stays after the task succeeds (`THUMBQ_KEEP_ORIGINALS`, `keep_original`), for
    /// renditions later. Absent (false: deleted) in messages of earlier versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_original: bool,
    /// Of a task of renditions made later (`POST /tasks/{id}/renditions`): the task whose kept original it reads,
    /// and never deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_task: Option<TaskId>,
    /// Of an import: where the worker reads the original from, when the store does not have it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<Import>,
    /// Of a bulk job's item: the job, whose cancellation the worker checks before it starts the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::job::JobId>,
    /// The attempt this message is for, starting at 1.
    pub attempt: u32,
    /// When the task was accepted by the API.
    pub created_at: DateTime<Utc>,
}

impl TaskEnvelope {
    /// The first attempt's envelope of a new resize task.
    pub fn new(id: TaskId, args: ResizeArgs, created_at: DateTime<Utc>) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            id,
            task: RESIZE_TASK.to_owned(),
            args,
            renditions: Vec::new(),
            callback_url: None,
            keep_original: false,
            source_task: None,
            import: None,
            job: None,
            attempt: 1,
            created_at,
        }
    }

    /// The first attempt's envelope of a task making `renditions` (at least one) from one decode.
    pub fn with_renditions(
        id: TaskId,
        renditions: Vec<(RenditionName, ResizeArgs)>,
        created_at: DateTime<Utc>,
    ) -> Self {
        let args = renditions.first().expect("a task makes at least one rendition").1;
        let renditions = renditions
            .into_iter()
            .map(|(name, args)| {
                let file = ThumbnailName::of_rendition(id, &name, args.format).to_string();
                Rendition { name, args, file, result: None, url: None, variants: Vec::new() }
            })
            .collect();
        Self { renditions, ..Self::new(id, args, created_at) }
    }

    /// The first attempt's envelope of `job`'s item: this one (the job's template) for task `id`, reading its
    /// original from `import`.
    pub fn for_item(&self, job: crate::job::JobId, id: TaskId, import: Import, created_at: DateTime<Utc>) -> Self {
        Self { import: Some(import), ..self.item(job, id, created_at) }
    }

    /// The first attempt's envelope of a `rerender` job's item: this one (the job's template) for task `id`,
    /// reading the original task `from` kept.
    pub fn for_rerender(&self, job: crate::job::JobId, id: TaskId, from: TaskId, created_at: DateTime<Utc>) -> Self {
        Self { source_task: Some(from), ..self.item(job, id, created_at) }
    }

    /// This template as task `id` of `job`: its renditions' files named after `id`.
    fn item(&self, job: crate::job::JobId, id: TaskId, created_at: DateTime<Utc>) -> Self {
        let file = |r: &Rendition| ThumbnailName::of_rendition(id, &r.name, r.args.format).to_string();
        let renditions = self.renditions.iter().map(|r| Rendition { file: file(r), ..r.clone() }).collect();
        Self { id, renditions, job: Some(job), attempt: 1, created_at, ..self.clone() }
    }

    /// The envelope of the next attempt.
    pub fn next_attempt(&self) -> Self {
        Self { attempt: self.attempt + 1, ..self.clone() }
    }

    /// The thumbnail this task is known by: its one thumbnail, or its first rendition.
    pub fn thumbnail_name(&self) -> ThumbnailName {
        ThumbnailName::primary(self.id, self.args.format, &self.renditions)
    }

    /// Every file this task writes, with what goes in it: one thumbnail, or one file per rendition; with
    /// `format=auto`, each in every variant.
    pub fn outputs(&self) -> Vec<(ThumbnailName, ResizeArgs)> {
        let outputs = if self.renditions.is_empty() {
            vec![(self.thumbnail_name(), self.args)]
        } else {
            let named = |r: &Rendition| (ThumbnailName::of_rendition(self.id, &r.name, r.args.format), r.args);
            self.renditions.iter().map(named).collect()
        };
        let variants = |(name, args): (ThumbnailName, ResizeArgs)| {
            args.variants().into_iter().map(move |args| (ThumbnailName { format: args.format, ..name.clone() }, args))
        };
        outputs.into_iter().flat_map(variants).collect()
    }

    /// The task whose original this one reads: its own, or the one it makes renditions of.
    pub fn original(&self) -> TaskId {
        self.source_task.unwrap_or(self.id)
    }

    /// The original this task deletes once it has ended for good (`succeeded` or failed permanently): its own,
    /// unless it is kept for renditions later (after a success), and never another task's.
    pub fn original_to_delete(&self, succeeded: bool) -> Option<TaskId> {
        (self.source_task.is_none() && !(succeeded && self.keep_original)).then_some(self.id)
    }

    /// Serialises the envelope to its JSON message body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TaskEnvelope always serialises")
    }

    /// Parses a message body, refusing other envelope versions and other task names.
    pub fn from_json(body: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(body).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(envelope.version));
        }
        if envelope.task != RESIZE_TASK {
            return Err(EnvelopeError::UnknownTask(envelope.task));
        }
        Ok(envelope)
    }
}

/// Why a message body is not a task this worker can run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON, or JSON of another shape.
    #[error("malformed task message: {0}")]
    Malformed(String),
    /// An envelope layout this worker does not know.
    #[error("unsupported envelope version {0}")]
    Version(u32),
    /// A task name this worker does not run.
    #[error("unknown task name {0:?}")]
    UnknownTask(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ResizeArgs {
        ResizeArgs::new(100, 80, Fit::Contain, OutputFormat::Webp)
    }

    #[test]
    fn a_message_without_quality_or_lossless_means_the_defaults_and_defaults_are_not_written() {
        let old = br#"{"width": 100, "height": 80, "fit": "contain", "format": "webp"}"#;
        let args: ResizeArgs = serde_json::from_slice(old).unwrap();
        assert_eq!(args, ResizeArgs::new(100, 80, Fit::Contain, OutputFormat::Webp));
        assert_eq!((args.quality(), ResizeArgs { format: OutputFormat::Jpeg, ..args }.quality()), (80, 85));
        assert!(!serde_json::to_string(&args).unwrap().contains("quality"));
        let asked = ResizeArgs { quality: Some(40), lossless: false, ..args };
        assert_eq!(asked.quality(), 40);
    }

    #[test]
    fn a_task_of_renditions_names_one_file_per_rendition_and_is_known_by_the_first() {
        let id = TaskId::new();
        let small = ResizeArgs::new(100, 100, Fit::Cover, OutputFormat::Jpeg);
        let large = ResizeArgs::new(1280, 1280, Fit::Contain, OutputFormat::Webp);
        let envelope = TaskEnvelope::with_renditions(
            id,
            vec![("small".parse().unwrap(), small), ("large".parse().unwrap(), large)],
            Utc::now(),
        );
        assert_eq!(envelope.args, small);
        assert_eq!(envelope.thumbnail_name().to_string(), format!("{id}-small.jpg"));
        let files: Vec<String> = envelope.outputs().iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(files, [format!("{id}-small.jpg"), format!("{id}-large.webp")]);
        assert_eq!(envelope.renditions[1].file, files[1]);
        assert_eq!(TaskEnvelope::from_json(&envelope.to_json()).unwrap(), envelope);
        let single = TaskEnvelope::new(id, small, Utc::now());
        assert_eq!(single.outputs(), vec![(single.thumbnail_name(), small)]);
        assert!(!String::from_utf8(single.to_json()).unwrap().contains("renditions"));
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let envelope = TaskEnvelope::new(TaskId::new(), args(), Utc::now()).next_attempt();
        let parsed = TaskEnvelope::from_json(&envelope.to_json()).unwrap();
        assert_eq!(parsed, envelope);
        assert_eq!(parsed.attempt, 2);
    }

    #[test]
    fn envelope_refuses_garbage_other_versions_and_unknown_tasks() {
        assert!(matches!(TaskEnvelope::from_json(b"\xff\x00garbage"), Err(EnvelopeError::Malformed(_))));
        let mut envelope = TaskEnvelope::new(TaskId::new(), args(), Utc::now());
        envelope.version = 2;
        assert_eq!(TaskEnvelope::from_json(&envelope.to_json()), Err(EnvelopeError::Version(2)));
        envelope.version = ENVELOPE_VERSION;
        envelope.task = "celery.backend_cleanup".into();
        assert!(matches!(TaskEnvelope::from_json(&envelope.to_json()), Err(EnvelopeError::UnknownTask(_))));
    }
}
