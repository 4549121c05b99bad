//! Erasure of a task (`DELETE /thumbnails/{name}`): its record and index entries go, and a mark,
//! `<prefix>erased:<id>`, stays for the result TTL.
//!
//! The mark tells an erased task from one whose record merely expired or was lost in a failover. Both have a
//! stored thumbnail and no record for a moment (a worker that was running when the task was erased writes its
//! thumbnail, then finds the task gone and removes it); only the second may be served and its record rebuilt.

use redis::AsyncCommands;

use super::{StateError, StateStore};
use crate::task::{TaskId, TaskRecord};

impl StateStore {
    /// Deletes the task's record, index entries and quota share, and marks it erased, in one transaction.
    pub async fn erase(&self, record: &TaskRecord) -> Result<(), StateError> {
        let mark = self.keys.erased(record.id);
        let ttl = self.ttl.as_secs();
        self.run_durable(&mark, async |conn| {
            let mut pipe = self.deletion(record);
            pipe.set_ex(&mark, 1, ttl).ignore();
            pipe.query_async(conn).await
        })
        .await
    }

    /// Whether the task was erased (within the result TTL).
    pub async fn erased(&self, id: TaskId) -> Result<bool, StateError> {
        let mark = self.keys.erased(id);
        self.run(async |conn| conn.exists(&mark).await).await
    }
}
