//! The event store: the records of the trails' log files, kept for LookupEvents (and later
//! QueryEvents) to answer from at local speed, with no CloudTrail quota spent.
//!
//! `Store` is the one interface the gateway uses; its implementation today is an embedded SQLite
//! file (`sqlite.rs`). The store knows records, places (account, Region) and files, never gRPC:
//! `convert` turns its events into the proto's, `ingest` feeds it.

pub mod blocks;
mod error;
pub mod layout;
pub mod lookup;
pub mod record;
mod sqlite;

use std::sync::Arc;

pub use error::StoreError;
pub use sqlite::{Count, File, Stored};

/// The store, shared by the ingest tasks and the API. Calls run on the blocking pool: SQLite's
/// calls block.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<sqlite::Sqlite>,
}

impl Store {
    /// Opens (or creates) the embedded store at `path`.
    pub fn open(path: &std::path::Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Arc::new(sqlite::Sqlite::open(path)?),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&sqlite::Sqlite) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || f(&backend))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Packs a file's records into compressed blocks, with the store's dictionary. CPU work, done
    /// while the file is parsed (on the blocking pool), not by the store's one writer.
    pub fn pack(&self, records: Vec<record::Indexed>) -> Result<Vec<blocks::Block>, StoreError> {
        blocks::pack(records, self.backend.dictionary().as_deref())
    }

    pub async fn lookup(&self, query: lookup::Lookup) -> Result<lookup::Page, StoreError> {
        self.run(move |s| s.lookup(&query)).await
    }

    pub async fn file_stored(&self, source: String, key: String) -> Result<bool, StoreError> {
        self.run(move |s| s.file_stored(&source, &key)).await
    }

    pub async fn cursor(
        &self,
        source: String,
        prefix: String,
    ) -> Result<Option<String>, StoreError> {
        self.run(move |s| s.cursor(&source, &prefix)).await
    }

    /// Stores one file (see [`File`]); `place` and `cursor` as owned strings.
    pub async fn store(&self, file: OwnedFile) -> Result<Stored, StoreError> {
        self.run(move |s| {
            s.store(&File {
                source: &file.source,
                key: &file.key,
                place: file.place.as_ref().map(|(a, r)| (a.as_str(), r.as_str())),
                blocks: &file.blocks,
                skipped: file.skipped.as_deref(),
                cursor: file.cursor.as_ref().map(|(p, a)| (p.as_str(), a.as_str())),
            })
        })
        .await
    }

    pub async fn counts(&self) -> Result<Vec<Count>, StoreError> {
        self.run(|s| s.counts()).await
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.backend.bytes_on_disk()
    }

    pub async fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.run(move |s| s.prune(before_ms)).await
    }
}

/// [`File`] with owned parts, to cross to the blocking pool.
#[derive(Debug, Clone)]
pub struct OwnedFile {
    pub source: String,
    pub key: String,
    pub place: Option<(String, String)>,
    pub blocks: Vec<blocks::Block>,
    pub skipped: Option<String>,
    pub cursor: Option<(String, String)>,
}
