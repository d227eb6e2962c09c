//! Feeding the event store from the trails' log files: each source is a bucket (and prefix) in
//! CloudTrail's layout, read with aws-sdk-s3, found by listing (`listing.rs`: one LIST per active
//! account/Region prefix per poll, after the last key stored) and read file by file (`file.rs`).
//! `status.rs` keeps where each source stands; LookupEvents reads it to know what the store covers.

pub mod clients;
pub mod file;
mod listing;
mod queue;
mod read;
pub mod status;

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use crate::store::Store;
use status::SourceStatus;

/// Where LookupEvents answers from, for the places a source covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Up to the store's watermark from the store, the newer part from CloudTrail.
    #[default]
    Auto,
    /// From the store only; CloudTrail is never called.
    Store,
    /// From CloudTrail only (the store still ingests).
    CloudTrail,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "auto" => Some(Mode::Auto),
            "store" => Some(Mode::Store),
            "cloudtrail" => Some(Mode::CloudTrail),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Store => "store",
            Mode::CloudTrail => "cloudtrail",
        }
    }
}

/// One source, checked.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub bucket: String,
    /// Before `AWSLogs/` (empty, or ending in `/`).
    pub prefix: String,
    /// The bucket's Region.
    pub region: String,
    /// A role to read the bucket as (the log-archive account's), assumed with the gateway's
    /// credentials.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// An S3-compatible endpoint instead of AWS's (moto, MinIO), for SQS too.
    pub endpoint_url: Option<String>,
    /// An SQS queue of the bucket's S3 event notifications: new files are found there, not by
    /// listing (which then runs once, for the backfill).
    pub queue_url: Option<String>,
    /// The accounts and Regions it serves (empty: all it finds).
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub mode: Mode,
}

/// How ingest runs, for every source.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub poll_interval: Duration,
    /// How far back a new place is read at start.
    pub backfill: Duration,
    /// How long after an event its file is surely in the bucket (CloudTrail: typically 5 minutes,
    /// not guaranteed): the watermark is the last complete poll's start less this.
    pub delivery_delay: Duration,
    /// A file larger than this (compressed or not) is skipped.
    pub max_file_bytes: u64,
    pub retention: Duration,
}

/// A source's S3 client and its settings.
#[derive(Debug, Clone)]
pub struct Source {
    pub config: Arc<SourceConfig>,
    pub s3: aws_sdk_s3::Client,
    /// With a queue.
    pub sqs: Option<aws_sdk_sqs::Client>,
    pub status: SourceStatus,
}

impl Source {
    pub fn new(
        config: SourceConfig,
        s3: aws_sdk_s3::Client,
        sqs: Option<aws_sdk_sqs::Client>,
    ) -> Source {
        let status = SourceStatus::new(&config.name, &config.bucket, config.mode);
        Source {
            config: Arc::new(config),
            s3,
            sqs,
            status,
        }
    }
}

/// The sources, for their readers: which one covers a place.
#[derive(Debug, Clone, Default)]
pub struct Sources(Arc<Vec<Source>>);

impl Sources {
    pub fn new(sources: Vec<Source>) -> Sources {
        Sources(Arc::new(sources))
    }

    pub fn all(&self) -> &[Source] {
        &self.0
    }

    /// The source that covers (account, Region) with the newest watermark, if any.
    pub fn covering(&self, account: &str, region: &str) -> Option<&Source> {
        self.0
            .iter()
            .filter(|s| s.status.covers(account, region))
            .max_by_key(|s| s.status.watermark(account, region))
    }
}

/// The store and what it covers: what LookupEvents answers from.
#[derive(Debug, Clone)]
pub struct History {
    pub store: Store,
    pub sources: Sources,
}

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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
