//! Feeding the event store from the trails' log files: each source is a bucket (and prefix) in
//! CloudTrail's layout, read with aws-sdk-s3, found by listing (`listing.rs`: one LIST per active
//! account/Region prefix per poll, after the last key stored) and read file by file (`file.rs`).
//! `status.rs` keeps where each source stands; LookupEvents reads it to know what the store covers.

pub mod clients;
pub mod file;
mod listing;
mod mode;
mod queue;
mod read;
mod source;
pub mod status;

pub use mode::Mode;
pub use source::{History, IngestConfig, Source, SourceConfig, Sources, now_ms};

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::Store;

/// Starts a task per source, and one that drops events past the retention; they stop when the
/// handles are dropped or aborted.
pub fn spawn(store: &Store, sources: &Sources, config: &IngestConfig) -> Vec<JoinHandle<()>> {
    let mut tasks: Vec<JoinHandle<()>> = sources
        .all()
        .iter()
        .map(|source| {
            let poller = listing::Poller::new(source.clone(), store.clone(), config.clone());
            tokio::spawn(poller.run())
        })
        .collect();
    tasks.push(tokio::spawn(prune(store.clone(), config.retention)));
    tasks
}

/// Polls every source once, to the end of its listing (tests and the benchmark).
pub async fn poll_once(store: &Store, sources: &Sources, config: &IngestConfig) {
    for source in sources.all() {
        listing::Poller::new(source.clone(), store.clone(), config.clone())
            .poll()
            .await;
    }
}

async fn prune(store: Store, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = now_ms() - retention.as_millis() as i64;
        match store.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "event store: events past the retention dropped"),
            Err(e) => tracing::warn!(error = %e, "event store: retention"),
        }
    }
}
