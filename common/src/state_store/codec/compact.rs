//! The parts of a stored record kept as arrays rather than objects, the names of their fields being most of their
//! bytes: a state change and an image's description. Both are written by the Lua scripts too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use serde_json::{Value, json};

use crate::task::{ImageInfo, StateChange, TaskErrorCode, TaskStatus};

/// A state change: `[status, ms since the record's creation, attempt, detail, code]`, the last two only when there
/// is one. The detail is the worker of a STARTED and the error of any other change (RETRY, FAILURE), with its code.
pub(super) struct Change {
    status: TaskStatus,
    since: i64,
    attempt: u32,
    detail: Option<String>,
    code: Option<TaskErrorCode>,
}

impl Change {
    pub(super) fn of(change: &StateChange, created_at: DateTime<Utc>) -> Self {
        let detail = if change.status == TaskStatus::Started { &change.worker } else { &change.error };
        Self {
            status: change.status,
            since: (change.at - created_at).num_milliseconds(),
            attempt: change.attempt,
            detail: detail.clone(),
            code: change.error_code,
        }
    }

    pub(super) fn into_change(self, created_at: DateTime<Utc>) -> StateChange {
        let started = self.status == TaskStatus::Started;
        StateChange {
            status: self.status,
            at: created_at + chrono::Duration::milliseconds(self.since),
            attempt: self.attempt,
            worker: self.detail.clone().filter(|_| started),
            error: self.detail.filter(|_| !started),
            error_code: self.code,
        }
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let code = self.code.map(TaskErrorCode::as_str);
        trimmed(json!([self.status, self.since, self.attempt, self.detail, code])).serialize(serializer)
    }
}

/// An array without its trailing nulls (the optional fields that are absent).
fn trimmed(mut value: Value) -> Value {
    if let Some(items) = value.as_array_mut() {
        while items.last().is_some_and(Value::is_null) {
            items.pop();
        }
    }
    value
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<Value>::deserialize(deserializer)?;
        let at = |i: usize| items.get(i).filter(|v| !v.is_null());
        Ok(Self {
            status: serde_json::from_value(at(0).cloned().unwrap_or_default()).map_err(D::Error::custom)?,
            since: at(1).and_then(Value::as_f64).ok_or_else(|| D::Error::custom("a change without its time"))?.round()
                as i64,
            attempt: at(2).and_then(Value::as_u64).and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
            detail: at(3).and_then(Value::as_str).map(str::to_owned),
            // A code this version does not know (a newer worker's) reads as none.
            code: at(4).and_then(Value::as_str).and_then(|code| code.parse().ok()),
        })
    }
}

/// An image's description: `[format, width, height, bytes, thumbhash, frames]`, the last two only when there are.
pub(super) mod image {
    use super::*;

    pub fn serialize<S: Serializer>(image: &Option<ImageInfo>, serializer: S) -> Result<S::Ok, S::Error> {
        image.as_ref().map(value).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ImageInfo>, D::Error> {
        let items = Vec::<Value>::deserialize(deserializer)?;
        let at = |i: usize| items.get(i).filter(|v| !v.is_null());
        let number = |i: usize| at(i).and_then(Value::as_f64).map(|n| n.round() as u64);
        let side = |i: usize| number(i).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| D::Error::custom("a side"));
        Ok(Some(ImageInfo {
            format: at(0).and_then(Value::as_str).ok_or_else(|| D::Error::custom("an image's format"))?.to_owned(),
            width: side(1)?,
            height: side(2)?,
            bytes: number(3).ok_or_else(|| D::Error::custom("an image's length"))?,
            thumbhash: at(4).and_then(Value::as_str).map(str::to_owned),
            frames: number(5).and_then(|n| u32::try_from(n).ok()),
        }))
    }

    /// One image as its array (for a transition's fields too).
    pub fn value(image: &ImageInfo) -> Value {
        trimmed(json!([image.format, image.width, image.height, image.bytes, image.thumbhash, image.frames]))
    }
}

/// What was asked for: `[width, height, fit, format, quality, lossless, focus, auto_focus, animated, auto]`, each
/// absent or false field a null and the trailing ones left out (`[100,100,"contain","jpeg"]`).
pub(super) mod args {
    use super::*;
    use crate::task::{Focus, ResizeArgs};

    pub fn serialize<S: Serializer>(args: &ResizeArgs, serializer: S) -> Result<S::Ok, S::Error> {
        let flag = |on: bool| on.then_some(true);
        let focus = args.focus.map(|f| [f.x, f.y]);
        trimmed(json!([
            args.width,
            args.height,
            args.fit,
            args.format,
            args.quality,
            flag(args.lossless),
            focus,
            flag(args.auto_focus),
            flag(args.animated),
            flag(args.auto),
        ]))
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ResizeArgs, D::Error> {
        let items = Vec::<Value>::deserialize(deserializer)?;
        let at = |i: usize| items.get(i).filter(|v| !v.is_null());
        let side = |i: usize| {
            at(i)
                .and_then(Value::as_f64)
                .and_then(|n| u32::try_from(n.round() as i64).ok())
                .ok_or_else(|| D::Error::custom("a thumbnail's side"))
        };
        let flag = |i: usize| at(i).and_then(Value::as_bool).unwrap_or(false);
        let focus = at(6).and_then(Value::as_array).and_then(|xy| {
            let coordinate = |i: usize| xy.get(i).and_then(Value::as_f64).map(|v| v as f32);
            Some(Focus { x: coordinate(0)?, y: coordinate(1)? })
        });
        Ok(ResizeArgs {
            width: side(0)?,
            height: side(1)?,
            fit: serde_json::from_value(at(2).cloned().unwrap_or_default()).map_err(D::Error::custom)?,
            format: serde_json::from_value(at(3).cloned().unwrap_or_default()).map_err(D::Error::custom)?,
            quality: at(4).and_then(Value::as_u64).and_then(|q| u8::try_from(q).ok()),
            lossless: flag(5),
            focus,
            auto_focus: flag(7),
            animated: flag(8),
            auto: flag(9),
        })
    }
}
