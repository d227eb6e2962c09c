//! The store's failures.

use std::path::PathBuf;

/// A store failure: refused at start (open, schema), or a failed read or write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the event store {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the event store's schema is version {found}; this gateway reads version {supported} only \
         (move the file aside: the store is rebuilt from the trail's log files)"
    )]
    Schema { found: i64, supported: i64 },
    #[error("event store: {0}")]
    Sqlite(String),
    #[error("event store: a stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("event store: its task failed: {0}")]
    Task(String),
}
