//! The embedded CloudTrail (`--upstream local`): its account, history and the AWS quotas it enforces.

use std::path::PathBuf;

use clap::Args;
use cloudtrail_local::{Options, Quotas};

use super::{
    UpstreamConfig, UpstreamKind,
    checks::{ConfigError, account_id, at_least_one, invalid, rate},
};

#[derive(Debug, Args)]
pub struct LocalSettings {
    /// Embedded CloudTrail: the account id in its ARNs.
    #[arg(long, value_name = "ID", default_value = "123456789012")]
    pub local_account_id: String,
    /// Embedded CloudTrail: CloudTrail log files or directories to load at start (repeatable;
    /// comma-separated in the environment variable).
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub local_load_logs: Vec<PathBuf>,
    /// Embedded CloudTrail: events kept per account and Region, oldest dropped first (about 1.8 KB
    /// each: ~36 MB at the default, which fits a small pod).
    #[arg(long, value_name = "N", default_value = "20000")]
    pub local_event_capacity: usize,
    /// Embedded CloudTrail: its LookupEvents quota per second, as AWS enforces it.
    #[arg(long, value_name = "RATE", default_value = "2")]
    pub local_lookup_quota: f64,
    /// Embedded CloudTrail: its read (Describe/Get/List) quota per second.
    #[arg(long, value_name = "RATE", default_value = "10")]
    pub local_read_quota: f64,
    /// Embedded CloudTrail: its write quota per second.
    #[arg(long, value_name = "RATE", default_value = "1")]
    pub local_write_quota: f64,
}

/// The embedded CloudTrail's options, and the log files it loads at start.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub options: Options,
    pub load_logs: Vec<PathBuf>,
}

impl LocalSettings {
    pub fn check(self, upstream: &UpstreamConfig) -> Result<LocalConfig, ConfigError> {
        account_id("local_account_id", &self.local_account_id)?;
        if upstream.kind == UpstreamKind::Aws && !self.local_load_logs.is_empty() {
            return Err(invalid("local_load_logs", "only with upstream = local"));
        }
        Ok(LocalConfig {
            options: Options {
                account_id: self.local_account_id,
                event_capacity: at_least_one("local_event_capacity", self.local_event_capacity)?,
                quotas: Quotas {
                    lookup: rate("local_lookup_quota", self.local_lookup_quota)?,
                    read: rate("local_read_quota", self.local_read_quota)?,
                    write: rate("local_write_quota", self.local_write_quota)?,
                },
                // Calls the gateway makes on nobody's behalf (authentication off) are this user's.
                username: "cloudtrail-gateway".into(),
            },
            load_logs: self.local_load_logs,
        })
    }
}
