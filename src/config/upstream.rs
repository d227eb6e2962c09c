//! Where CloudTrail calls go, and how the SDK makes them.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{
    checks::{self, ConfigError, account_id, invalid, positive, url},
    duration::HumanDuration,
};

/// Where CloudTrail calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpstreamKind {
    /// The embedded CloudTrail, in process: no AWS account needed.
    Local,
    /// AWS CloudTrail, or any CloudTrail-compatible endpoint given with --endpoint-url.
    Aws,
}

/// The SDK's retry strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetryMode {
    Standard,
    Adaptive,
}

#[derive(Debug, Args)]
pub struct UpstreamSettings {
    /// Where CloudTrail calls go.
    #[arg(long, value_enum, default_value = "local")]
    pub upstream: UpstreamKind,
    /// AWS Region all calls go to [local: us-east-1 when unset; aws: from the AWS config chain].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// With --upstream aws: a CloudTrail-compatible endpoint instead of AWS's (e.g. moto).
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub endpoint_url: Option<String>,
    /// SDK retry strategy.
    #[arg(long, value_enum, default_value = "standard")]
    pub retry_mode: RetryMode,
    /// SDK attempts per call, the first one included (1-10).
    #[arg(long, value_name = "N", default_value = "3")]
    pub max_attempts: u32,
    /// Time to connect to the upstream.
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub connect_timeout: HumanDuration,
    /// Time for one call including retries; a caller's shorter gRPC deadline wins.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub operation_timeout: HumanDuration,
    /// With --upstream aws: the account the quotas belong to [unset: asked of STS at start].
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
}

/// Upstream settings for building the SDK clients, checked.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub kind: UpstreamKind,
    /// None with `aws`: the AWS config chain decides.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub retry_mode: RetryMode,
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// With `aws`: the account, if configured (else STS is asked).
    pub account_id: Option<String>,
}

/// The Region the embedded CloudTrail serves when none is set.
pub const LOCAL_DEFAULT_REGION: &str = "us-east-1";

impl UpstreamSettings {
    pub fn check(self) -> Result<UpstreamConfig, ConfigError> {
        let region = match (self.upstream, self.region) {
            (UpstreamKind::Local, None) => Some(LOCAL_DEFAULT_REGION.to_owned()),
            (_, region) => region,
        };
        if let Some(r) = &region {
            checks::region("region", r)?;
        }
        if let Some(endpoint) = &self.endpoint_url {
            if self.upstream == UpstreamKind::Local {
                return Err(invalid("endpoint_url", "only with upstream = aws"));
            }
            url("endpoint_url", endpoint, &["http", "https"])?;
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(invalid(
                "max_attempts",
                format!("must be 1 to 10, got {}", self.max_attempts),
            ));
        }
        if let Some(account) = &self.account_id {
            account_id("account_id", account)?;
        }
        Ok(UpstreamConfig {
            kind: self.upstream,
            region,
            endpoint_url: self.endpoint_url,
            retry_mode: self.retry_mode,
            max_attempts: self.max_attempts,
            connect_timeout: positive("connect_timeout", self.connect_timeout.0)?,
            operation_timeout: positive("operation_timeout", self.operation_timeout.0)?,
            account_id: self.account_id,
        })
    }
}

impl std::fmt::Display for UpstreamKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.to_possible_value();
        f.write_str(name.as_ref().map_or("?", |v| v.get_name()))
    }
}
