//! Bulk jobs (`POST /jobs`): many imports made from one request, in a lane of their own. A job names its items (a
//! prefix of the import store, listed page by page as it runs, or a list of URLs); the workers' job pump
//! (`worker/src/job_pump.rs`) turns them into import tasks, at most `THUMBQ_JOB_WINDOW` of a job in RabbitMQ at once,
//! and the transition script counts each item's end into its job (`state_store::jobs`).
//!
//! An item's task id is derived from its job and its source ([`item_id`]): the pump can make an item again after a
//! crash and find the task it made before, so no item is ever done twice.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::task::{Import, TaskErrorCode, TaskId};

/// Most URLs one `{"sources": [...]}` job takes.
pub const MAX_SOURCES: usize = 10_000;

/// Failures a job keeps to show (the first ones); the rest are counted.
pub const KEPT_FAILURES: usize = 10;

/// A job's identity: a random UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid, example = "0b5e8a9c-4a61-4d2f-8f0e-1f5b3d8c2a77")]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// Its last byte (random), which its items' ids share: a job and its items are on one shard of a Redis Cluster
    /// ([`Keys`](crate::state_store::Keys)), where the transition script counts an item into its job.
    pub fn spread(&self) -> u8 {
        self.0.as_bytes()[15]
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A string that is not a job id in canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a job id: expected a lower-case hyphenated UUID")]
pub struct InvalidJobId;

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The canonical spelling only, as for task ids.
        let id = Self(Uuid::try_parse(s).map_err(|_| InvalidJobId)?);
        if id.to_string() == s { Ok(id) } else { Err(InvalidJobId) }
    }
}

/// The task id of the item of `job` read from `import`: the same every time, so an item made twice is one task.
pub fn item_id(job: JobId, import: &Import) -> TaskId {
    derived_id(job, &serde_json::to_vec(import).unwrap_or_default())
}

/// The task id of the item of a `rerender` job `job` made from task `from`'s kept original.
pub fn rerender_id(job: JobId, from: TaskId) -> TaskId {
    derived_id(job, format!("rerender:{from}").as_bytes())
}

/// A UUID of version 8 ("custom"): the first 15 bytes of a SHA-256 of the job and what names the item, then the
/// job's last byte (its [`JobId::spread`]).
fn derived_id(job: JobId, item: &[u8]) -> TaskId {
    let digest = Sha256::new().chain_update(job.0.as_bytes()).chain_update(item);
    let mut bytes: [u8; 16] = digest.finalize()[..16].try_into().expect("16 of 32 bytes");
    bytes[15] = job.spread();
    TaskId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// What a job makes thumbnails of: the body of `POST /jobs`, exactly one field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobSpec {
    /// Every object under this folder of the import store (`THUMBQ_IMPORT_URL`), listed page by page as the job
    /// runs; empty: the whole store.
    #[schema(example = "photos/2024")]
    Prefix(String),
    /// These URLs (at most 10,000), each fetched as an import's `source`.
    Sources(Vec<String>),
    /// Kept originals made again with the job's parameters: every task that succeeded and kept its original
    /// (`THUMBQ_KEEP_ORIGINALS`) before the job was made, or those the filter names.
    Rerender(RerenderFilter),
}

/// Which kept originals a `rerender` job makes again. Tasks made by jobs are not among them (they are in their
/// job's index only, and expire after `THUMBQ_JOB_ITEM_TTL_SECS`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerenderFilter {
    /// Only tasks made with this preset (one of their renditions has its name): the preset-migration case, where a
    /// preset's size changed and its thumbnails are made again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "card")]
    pub preset: Option<String>,
    /// Only tasks uploaded with this API key. A key without the `admin` scope may name only itself, and its job
    /// takes its own tasks whatever it names; with keys off, every task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "mobile-app")]
    pub owner: Option<String>,
}

impl RerenderFilter {
    /// Whether the task `record` is one to make again (it succeeded, and matches the filter); whether its original
    /// was kept only the file store knows.
    pub fn matches(&self, record: &crate::task::TaskRecord) -> bool {
        record.status == crate::task::TaskStatus::Success
            && record.job.is_none()
            && self.owner.as_ref().is_none_or(|owner| record.owner.as_ref() == Some(owner))
            && self.preset.as_ref().is_none_or(|preset| record.renditions.iter().any(|r| r.name.as_str() == preset))
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Its items are being made.
    Running,
    /// No new item starts until it is resumed.
    Paused,
    /// Cancelled: no new item starts.
    Cancelled,
    /// Every item has ended.
    Done,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Running, Self::Paused, Self::Cancelled, Self::Done];

    /// The name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Cancelled => "CANCELLED",
            Self::Done => "DONE",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| format!("unknown job status {s:?}"))
    }
}

/// One failed item, as the job keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobFailure {
    /// The item's task.
    pub task_id: TaskId,
    /// Its code.
    #[serde(deserialize_with = "TaskErrorCode::lenient")]
    pub error_code: Option<TaskErrorCode>,
}

/// A job as `GET /jobs/{id}` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Where it is.
    pub status: JobStatus,
    /// What it makes thumbnails of: `{"prefix": …}`, `{"sources": N}` with the number of URLs, or `{"rerender":
    /// {…}}` with its filter.
    #[schema(value_type = Object, example = json!({"prefix": "photos/2024"}))]
    pub spec: serde_json::Value,
    /// The upload parameters every item is made with, as the query string of `POST /jobs`.
    #[schema(example = "sizes=320x240,64x64")]
    pub query: String,
    /// The API key that made it (absent with keys off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where the job is POSTed, signed, when it ends (DONE or CANCELLED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Items found so far: grows while a prefix is being listed.
    pub total: u64,
    /// Whether every item has been found (`total` is final).
    pub listed: bool,
    /// Items handed to the workers so far.
    pub queued: u64,
    /// Items that succeeded.
    pub done: u64,
    /// Items that failed.
    pub failed: u64,
    /// Items that did not start because the job was cancelled.
    pub cancelled: u64,
    /// Items ended per second since the job started.
    pub rate: f64,
    /// Seconds left at that rate, once `total` is final and an item has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it ended (DONE or CANCELLED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The first failures, with their codes (at most 10).
    #[serde(default)]
    pub failures: Vec<JobFailure>,
    /// Its webhook's deliveries, with a `callback_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<crate::task::WebhookLog>,
    /// How many times it has ended (a job whose failures are retried ends again): its webhooks' generation.
    #[serde(default)]
    pub ends: u64,
    /// Absolute URL of this record (added by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
}

impl Job {
    /// Fills in `rate` and `eta_secs` from the counts, as of `now`.
    pub fn with_rate(mut self, now: DateTime<Utc>) -> Self {
        let ended = self.done + self.failed + self.cancelled;
        let until = self.finished_at.unwrap_or(now);
        let secs = (until - self.created_at).num_milliseconds().max(1) as f64 / 1000.0;
        self.rate = (ended as f64 / secs * 100.0).round() / 100.0;
        self.eta_secs = (self.listed && ended > 0 && self.status == JobStatus::Running)
            .then(|| (self.total.saturating_sub(ended) as f64 / (ended as f64 / secs)).ceil() as u64);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_s_id_is_the_same_for_the_same_job_and_source_only() {
        let (job, other) = (JobId::new(), JobId::new());
        let a = Import::Key("photos/a.jpg".into());
        let b = Import::Key("photos/b.jpg".into());
        assert_eq!(item_id(job, &a), item_id(job, &a));
        assert_ne!(item_id(job, &a), item_id(job, &b));
        assert_ne!(item_id(job, &a), item_id(other, &a));
        assert_ne!(item_id(job, &a), item_id(job, &Import::Source("photos/a.jpg".into())));
        let id = item_id(job, &a).to_string();
        assert_eq!(id.parse::<TaskId>().map(|p| p.to_string()), Ok(id.clone()), "a canonical task id");
        // On the job's shard, which its transitions count the item into.
        assert_eq!(item_id(job, &a).spread(), job.spread());
        assert_eq!(rerender_id(job, TaskId::new()).spread(), job.spread());
    }

    #[test]
    fn a_rerender_filter_takes_successes_of_its_preset_and_owner_and_no_job_item() {
        use crate::task::{Fit, OutputFormat, ResizeArgs, TaskEnvelope, TaskRecord, TaskStatus};
        let args = ResizeArgs::new(160, 160, Fit::Cover, OutputFormat::Jpeg);
        let envelope = TaskEnvelope::with_renditions(TaskId::new(), vec![("thumb".parse().unwrap(), args)], Utc::now());
        let done =
            TaskRecord { status: TaskStatus::Success, owner: Some("a".into()), ..TaskRecord::pending(&envelope, None) };
        let filter = |preset: Option<&str>, owner: Option<&str>| RerenderFilter {
            preset: preset.map(str::to_owned),
            owner: owner.map(str::to_owned),
        };
        assert!(filter(None, None).matches(&done));
        assert!(filter(Some("thumb"), Some("a")).matches(&done));
        assert!(!filter(Some("small"), None).matches(&done));
        assert!(!filter(None, Some("b")).matches(&done));
        assert!(!filter(None, None).matches(&TaskRecord { status: TaskStatus::Failure, ..done.clone() }));
        assert!(!filter(None, None).matches(&TaskRecord { job: Some(JobId::new()), ..done }));
        let from = TaskId::new();
        let job = JobId::new();
        assert_eq!(rerender_id(job, from), rerender_id(job, from));
        assert_ne!(rerender_id(job, from), rerender_id(JobId::new(), from));
        let spec: JobSpec = serde_json::from_str(r#"{"rerender": {"preset": "thumb"}}"#).unwrap();
        assert_eq!(spec, JobSpec::Rerender(filter(Some("thumb"), None)));
        assert!(serde_json::from_str::<JobSpec>(r#"{"rerender": {"presets": "thumb"}}"#).is_err());
    }

    #[test]
    fn a_spec_is_one_field_and_statuses_read_back() {
        let spec: JobSpec = serde_json::from_str(r#"{"prefix": "photos"}"#).unwrap();
        assert_eq!(spec, JobSpec::Prefix("photos".into()));
        assert!(serde_json::from_str::<JobSpec>(r#"{"prefix": "a", "sources": []}"#).is_err());
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
