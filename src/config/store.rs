//! The event store (`--store-path`) and its sources (`[[log_sources]]`).

use std::path::PathBuf;

use clap::{ArgAction, Args};
use serde::{Deserialize, Serialize};

use super::{
    checks::{ConfigError, account_id, at_least_one, invalid, positive, region, url},
    duration::HumanDuration,
    upstream::{UpstreamConfig, UpstreamKind},
};
use crate::ingest::{IngestConfig, Mode, SourceConfig};

#[derive(Debug, Args)]
pub struct StoreSettings {
    /// Event store: keep the records of the trails' log files ([[log_sources]], and with
    /// upstream = local the embedded S3's buckets) and answer LookupEvents from them.
    #[arg(long, value_name = "BOOL", default_value = "true", action = ArgAction::Set)]
    pub store: bool,
    /// Event store: its SQLite file, created when missing.
    #[arg(long, value_name = "FILE", default_value = "cloudtrail-store.db")]
    pub store_path: PathBuf,
    /// Event store: where LookupEvents answers from for the places a source covers: `auto` (the
    /// store up to its watermark, CloudTrail for the newer part), `store` (never CloudTrail) or
    /// `cloudtrail`; a source's `lookups` overrides it.
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub store_lookups: String,
    /// Event store: how often each source's bucket is listed for new log files.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub store_poll_interval: HumanDuration,
    /// Event store: how far back a source's files are read the first time.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub store_backfill: HumanDuration,
    /// Event store: how long after an event its log file is surely in the bucket (CloudTrail:
    /// typically 5 minutes, not guaranteed); the store answers up to the last complete poll less
    /// this, CloudTrail the rest.
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub store_delivery_delay: HumanDuration,
    /// Event store: events older than this are dropped.
    #[arg(long, value_name = "DURATION", default_value = "400d")]
    pub store_retention: HumanDuration,
    /// Event store: a log file larger than this (compressed or not) is skipped and counted.
    #[arg(long, value_name = "BYTES", default_value = "268435456")]
    pub store_max_file_bytes: u64,
}

/// One `[[log_sources]]` entry: a bucket (and prefix) holding trail log files.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceEntry {
    /// A name for status and metrics [default: the bucket].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub bucket: String,
    /// The trail's S3 key prefix, if any (before `AWSLogs/`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The bucket's Region [default: the upstream's Region].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A role to read the bucket as (the log-archive account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// An S3-compatible endpoint (moto, MinIO) instead of AWS's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// An SQS queue of the bucket's S3 event notifications (then new files are found there, not
    /// by listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    /// The accounts and Regions it serves [default: all it finds].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// `auto`, `store` or `cloudtrail` [default: store_lookups].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookups: Option<String>,
}

/// The store's checked settings: None for `path` when there is no store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: Option<PathBuf>,
    pub ingest: IngestConfig,
    pub sources: Vec<SourceConfig>,
    /// With upstream = local: the embedded S3's buckets are a source.
    pub local_source: bool,
    /// The mode of the embedded source.
    pub default_mode: Mode,
}

/// The name of the embedded S3's source.
pub const LOCAL_SOURCE: &str = "embedded";

fn mode(key: &str, text: &str) -> Result<Mode, ConfigError> {
    Mode::parse(text)
        .ok_or_else(|| invalid(key, format!("'{text}': one of auto, store, cloudtrail")))
}

impl StoreSettings {
    pub fn check(
        self,
        upstream: &UpstreamConfig,
        entries: Vec<LogSourceEntry>,
    ) -> Result<StoreConfig, ConfigError> {
        let default_mode = mode("store_lookups", &self.store_lookups)?;
        let ingest = IngestConfig {
            poll_interval: positive("store_poll_interval", self.store_poll_interval.0)?,
            backfill: self.store_backfill.0,
            delivery_delay: self.store_delivery_delay.0,
            max_file_bytes: at_least_one("store_max_file_bytes", self.store_max_file_bytes)?,
            retention: positive("store_retention", self.store_retention.0)?,
        };
        let mut sources = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let key = |field: &str| format!("log_sources[{i}].{field}");
            if e.bucket.is_empty() {
                return Err(invalid(key("bucket"), "required"));
            }
            let bucket_region = match e.region.or_else(|| upstream.region.clone()) {
                Some(r) => r,
                None => return Err(invalid(key("region"), "required (no upstream region)")),
            };
            region(&key("region"), &bucket_region)?;
            for account in &e.accounts {
                account_id(&key("accounts"), account)?;
            }
            for r in &e.regions {
                region(&key("regions"), r)?;
            }
            if let Some(u) = &e.endpoint_url {
                url(&key("endpoint_url"), u, &["http", "https"])?;
            }
            if let Some(u) = &e.queue_url {
                url(&key("queue_url"), u, &["http", "https"])?;
            }
            if let Some(arn) = &e.role_arn
                && !arn.starts_with("arn:aws:iam::")
            {
                return Err(invalid(
                    key("role_arn"),
                    format!("'{arn}' is not an IAM role ARN"),
                ));
            }
            if !e.prefix.is_empty() && !e.prefix.ends_with('/') {
                return Err(invalid(key("prefix"), "must end in '/'"));
            }
            let name = e.name.unwrap_or_else(|| e.bucket.clone());
            if name == LOCAL_SOURCE || sources.iter().any(|s: &SourceConfig| s.name == name) {
                return Err(invalid(key("name"), format!("'{name}' is taken")));
            }
            sources.push(SourceConfig {
                name,
                bucket: e.bucket,
                prefix: e.prefix,
                region: bucket_region,
                role_arn: e.role_arn,
                external_id: e.external_id,
                endpoint_url: e.endpoint_url,
                queue_url: e.queue_url,
                accounts: e.accounts,
                regions: e.regions,
                mode: match &e.lookups {
                    Some(m) => mode(&key("lookups"), m)?,
                    None => default_mode,
                },
            });
        }
        let local_source = upstream.kind == UpstreamKind::Local;
        let has_sources = local_source || !sources.is_empty();
        Ok(StoreConfig {
            path: (self.store && has_sources).then_some(self.store_path),
            ingest,
            sources,
            local_source,
            default_mode,
        })
    }
}
