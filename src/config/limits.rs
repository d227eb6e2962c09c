//! The gateway's own quotas per account, Region and class, and how callers share them.

use std::{collections::BTreeMap, path::PathBuf};

use clap::Args;

use super::{
    checks::{ConfigError, at_least_one, invalid, positive, rate, readable, url},
    duration::HumanDuration,
};
use crate::limits::{Fairness, LimitsConfig, Quotas};

/// The default `[weights]` of StreamEvents' shared polls (`principal::FEED_QUEUE`).
pub const STREAM_WEIGHT: u32 = 10;

#[derive(Debug, Args)]
pub struct LimitSettings {
    /// LookupEvents calls per second per account and Region.
    #[arg(long, value_name = "RATE", default_value = "1")]
    pub lookup_rate: f64,
    /// Describe/Get/List calls per second per account and Region.
    #[arg(long, value_name = "RATE", default_value = "10")]
    pub read_rate: f64,
    /// Other calls per second per account and Region.
    #[arg(long, value_name = "RATE", default_value = "1")]
    pub write_rate: f64,
    /// The longest a call waits for its slot, whatever its deadline.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub limit_max_wait: HumanDuration,
    /// The longest a call that set no deadline (no grpc-timeout) waits for its slot: such a caller
    /// may not wait long itself (grpcurl-rs's --max-time sends none).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub limit_max_wait_without_deadline: HumanDuration,
    /// How waiting callers share slots.
    #[arg(long, value_enum, default_value = "round-robin")]
    pub fairness: Fairness,
    /// Share the quotas with other replicas through Redis (redis:// or rediss:// for TLS; a password
    /// as `redis://:PASSWORD@host:6379`).
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// With a rediss:// URL: the CA (PEM) Redis's certificate chains to, when not a public one.
    #[arg(long, value_name = "FILE")]
    pub redis_ca: Option<PathBuf>,
    /// Replicas sharing the quota; with Redis away each takes quota / this.
    #[arg(long, value_name = "N", default_value = "1")]
    pub expected_replicas: u32,
}

impl LimitSettings {
    pub fn check(self, mut weights: BTreeMap<String, u32>) -> Result<LimitsConfig, ConfigError> {
        // The shared follow polls of StreamEvents queue as one principal: as much as ten callers,
        // so neither the streams nor the LookupEvents callers can starve the others.
        weights
            .entry(crate::principal::FEED_QUEUE.to_owned())
            .or_insert(STREAM_WEIGHT);
        if let Some(redis) = &self.redis_url {
            url("redis_url", redis, &["redis", "rediss"])?;
        }
        let redis_ca = match (&self.redis_ca, &self.redis_url) {
            (None, _) => None,
            (Some(ca), Some(url)) if url.starts_with("rediss://") => {
                Some(readable("redis_ca", ca)?)
            }
            (Some(_), _) => return Err(invalid("redis_ca", "only with a rediss:// redis_url")),
        };
        if let Some((principal, _)) = weights.iter().find(|(_, w)| **w == 0) {
            return Err(invalid(
                "weights",
                format!("the weight of '{principal}' must be at least 1"),
            ));
        }
        Ok(LimitsConfig {
            quotas: Quotas {
                lookup: rate("lookup_rate", self.lookup_rate)?,
                read: rate("read_rate", self.read_rate)?,
                write: rate("write_rate", self.write_rate)?,
            },
            max_wait: positive("limit_max_wait", self.limit_max_wait.0)?,
            max_wait_without_deadline: self.limit_max_wait_without_deadline.0,
            fairness: self.fairness,
            weights,
            redis_url: self.redis_url,
            redis_ca,
            expected_replicas: at_least_one("expected_replicas", self.expected_replicas)?,
        })
    }
}
