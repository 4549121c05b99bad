//! The wire format of a task event on the `<prefix>events` channel: `<id> <STATUS> <record>`, the record as stored
//! ([`codec`](super::codec)), so that a long poll woken by its task's end has the record without reading it again.
//! Written here (the transition script appends the record to the payload it is given) and read here, so the two
//! sides cannot drift.

use crate::task::{TaskId, TaskStatus};

/// The start of the payload announcing that task `id` moved to `status`; the script adds ` <record>`.
pub fn payload(id: TaskId, status: TaskStatus) -> String {
    format!("{id} {status}")
}

/// Reads an event payload: the task, the status it moved to, and its record as stored (absent from the events of
/// earlier versions).
pub fn parse(payload: &str) -> Option<(TaskId, TaskStatus, Option<&str>)> {
    let (id, rest) = payload.split_once(' ')?;
    let (status, record) = match rest.split_once(' ') {
        Some((status, record)) => (status, Some(record)),
        None => (rest, None),
    };
    Some((id.parse().ok()?, status.parse().ok()?, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_garbage_is_ignored() {
        let id = TaskId::new();
        for status in TaskStatus::ALL {
            assert_eq!(parse(&payload(id, status)), Some((id, status, None)));
            let with_record = format!("{} {{\"s\":\"{status}\"}}", payload(id, status));
            assert_eq!(parse(&with_record), Some((id, status, Some(&*format!("{{\"s\":\"{status}\"}}")))));
        }
        for bad in ["", "nonsense", &format!("{id}"), &format!("{id} DONE"), "not-an-id SUCCESS"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
