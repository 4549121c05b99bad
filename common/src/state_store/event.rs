//! The wire format of a task event on the `<prefix>events` channel: `<id> <STATUS>`. Written here (the transition
//! script publishes the payload it is given) and read here, so the two sides cannot drift.

use crate::task::{TaskId, TaskStatus};

/// The payload announcing that task `id` moved to `status`.
pub fn payload(id: TaskId, status: TaskStatus) -> String {
    format!("{id} {status}")
}

/// Reads an event payload: the task and the status it moved to.
pub fn parse(payload: &str) -> Option<(TaskId, TaskStatus)> {
    let (id, status) = payload.split_once(' ')?;
    Some((id.parse().ok()?, status.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_garbage_is_ignored() {
        let id = TaskId::new();
        for status in TaskStatus::ALL {
            assert_eq!(parse(&payload(id, status)), Some((id, status)));
        }
        for bad in ["", "nonsense", &format!("{id}"), &format!("{id} DONE"), "not-an-id SUCCESS"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
