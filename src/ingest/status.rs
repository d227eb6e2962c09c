//! Where each source stands, per (account, Region): the watermark (every event up to it is in the
//! store), when it was last polled, what it stored and skipped, its errors. Read by the status RPC,
//! the metrics and LookupEvents (which answers from the store only up to the watermark).

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use super::mode::Mode;
use crate::locks::{read, write};

/// One (account, Region) of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceStatus {
    /// Every event up to this time (ms since the epoch) is stored; None until a first poll of
    /// the place completed.
    pub watermark_ms: Option<i64>,
    /// When the last complete poll began.
    pub polled_ms: Option<i64>,
    /// Files seen in the bucket and not stored yet (from the last listing).
    pub backlog: u64,
    /// Files stored since start, events stored, events already stored, files skipped, records
    /// left out, failed attempts (retried).
    pub files: u64,
    pub events: u64,
    pub duplicates: u64,
    pub skipped: u64,
    pub unusable: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

/// A backfill's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backfill {
    /// 0 to 100.
    pub percent: f64,
    pub files: u64,
    pub events: u64,
    pub done: bool,
}

#[derive(Debug, Default)]
struct Inner {
    places: BTreeMap<(String, String), PlaceStatus>,
    errors: u64,
    last_error: Option<String>,
    backfill: Backfill,
}

/// A source's status, shared by its task and its readers.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub name: Arc<str>,
    pub bucket: Arc<str>,
    pub mode: Mode,
    inner: Arc<RwLock<Inner>>,
}

/// A copy of a source's status.
#[derive(Debug, Clone)]
pub struct SourceSnapshot {
    pub name: String,
    pub bucket: String,
    pub mode: Mode,
    pub places: BTreeMap<(String, String), PlaceStatus>,
    pub errors: u64,
    pub last_error: Option<String>,
    pub backfill: Backfill,
}

impl SourceStatus {
    pub fn new(name: &str, bucket: &str, mode: Mode) -> SourceStatus {
        SourceStatus {
            name: name.into(),
            bucket: bucket.into(),
            mode,
            inner: Arc::default(),
        }
    }

    /// Changes one place's status.
    pub fn place(&self, account: &str, region: &str, f: impl FnOnce(&mut PlaceStatus)) {
        let mut inner = write(&self.inner);
        f(inner
            .places
            .entry((account.to_owned(), region.to_owned()))
            .or_default());
    }

    /// A failure of the source as a whole (a listing of its accounts, its queue).
    pub fn failed(&self, error: &str) {
        let mut inner = write(&self.inner);
        inner.errors += 1;
        inner.last_error = Some(error.to_owned());
    }

    pub fn backfill(&self, f: impl FnOnce(&mut Backfill)) {
        f(&mut write(&self.inner).backfill);
    }

    pub fn watermark(&self, account: &str, region: &str) -> Option<i64> {
        read(&self.inner)
            .places
            .get(&(account.to_owned(), region.to_owned()))?
            .watermark_ms
    }

    pub fn covers(&self, account: &str, region: &str) -> bool {
        read(&self.inner)
            .places
            .contains_key(&(account.to_owned(), region.to_owned()))
    }

    pub fn snapshot(&self) -> SourceSnapshot {
        let inner = read(&self.inner);
        SourceSnapshot {
            name: self.name.to_string(),
            bucket: self.bucket.to_string(),
            mode: self.mode,
            places: inner.places.clone(),
            errors: inner.errors,
            last_error: inner.last_error.clone(),
            backfill: inner.backfill.clone(),
        }
    }
}
