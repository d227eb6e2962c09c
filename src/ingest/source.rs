//! A source and its settings, the sources as their readers see them, and how ingest runs.

use std::{sync::Arc, time::Duration};

use super::{mode::Mode, status::SourceStatus};
use crate::store::Store;

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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
