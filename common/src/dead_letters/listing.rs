//! Looking at the dead letters without taking them (`GET /dead-letters`): each is read with `basic.get` and left
//! unacknowledged, and all return to the queue, in their order, when the action's channel closes. The dead-letter
//! queues have no delivery limit, so looking costs a message nothing. The tasks' lane's come first, then the bulk
//! lane's.

use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;
use utoipa::ToSchema;

use super::{DeadLetterError, DeadLetters};
use crate::{
    TaskEnvelope, TaskId,
    broker::{ERROR_CODE_HEADER, ERROR_HEADER, REASON_HEADER},
    task::TaskErrorCode,
};

/// A dead letter as it is listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The task; absent for a message that is not a task (poison).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub task_id: Option<TaskId>,
    /// Why it is here: `retries_exhausted`, `poison` (both the worker's) or RabbitMQ's own reason
    /// (`delivery_limit`: it crashed its worker every time).
    #[schema(example = "retries_exhausted")]
    pub reason: String,
    /// The last error, as the task's record tells it (no server detail); absent when none was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last error's stable code, the task record's `error_code` (`invalid_message` for a message that is not a
    /// task); absent when none was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "store_failed")]
    pub error_code: Option<TaskErrorCode>,
}

/// A page of dead letters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeadLetterPage {
    /// The dead letters, oldest first.
    pub dead_letters: Vec<DeadLetter>,
    /// Where the next page starts (`?offset=`), when more follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

impl DeadLetters {
    /// The dead letters from the `offset`-th on, at most `limit`, left in the queue. Reading a page means reading
    /// the ones before it too (a queue has no index), so offsets are bounded by the caller.
    pub async fn peek(&self, offset: usize, limit: usize) -> Result<DeadLetterPage, DeadLetterError> {
        let (mut page, mut lane) = (DeadLetterPage::default(), 0);
        for position in 0..=offset + limit {
            let Some(message) = self.get(&mut lane).await? else { return Ok(page) };
            if position == offset + limit {
                page.next_offset = Some(position);
            } else if position >= offset {
                page.dead_letters.push(describe(&message.delivery.data, message.delivery.properties.headers()));
            }
        }
        Ok(page)
    }
}

fn describe(body: &[u8], headers: &Option<FieldTable>) -> DeadLetter {
    let header = |name: &str| match headers.as_ref().and_then(|h| h.inner().get(name)) {
        Some(AMQPValue::LongString(text)) => Some(text.to_string()),
        Some(AMQPValue::ShortString(text)) => Some(text.to_string()),
        _ => None,
    };
    DeadLetter {
        task_id: TaskEnvelope::from_json(body).ok().map(|envelope| envelope.id),
        // A message RabbitMQ dead-lettered itself carries its reason in `x-first-death-reason`.
        reason: header(REASON_HEADER).or_else(|| header("x-first-death-reason")).unwrap_or_else(|| "unknown".into()),
        error: header(ERROR_HEADER),
        // A code this version does not know (a newer worker's) is left out rather than failing the listing.
        error_code: header(ERROR_CODE_HEADER).and_then(|code| code.parse().ok()),
    }
}
