//! Builds the one shared `aws_sdk_cloudtrail::Client`: Region, credentials, endpoint, retries and
//! timeouts. Built once at start; every RPC clones the handle (cheap) and never rebuilds it.

use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_cloudtrail::{Client, config::Credentials};

use crate::{
    config::{RetryMode, UpstreamConfig, UpstreamKind},
    local::LocalCloudTrail,
};

fn retry_config(c: &UpstreamConfig) -> RetryConfig {
    let base = match c.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    };
    base.with_max_attempts(c.max_attempts)
}

fn timeout_config(c: &UpstreamConfig) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(c.connect_timeout)
        .operation_timeout(c.operation_timeout)
        .build()
}

/// No Region was configured and the AWS config chain has none either.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid setting `region`: not set, and the AWS config chain (AWS_REGION, profile) has none"
)]
pub struct NoRegion;

/// The client for `aws`: credentials and (unless configured) the Region from aws-config's default
/// chain (environment, profiles, SSO, web identity, container and instance metadata).
pub async fn aws_client(c: &UpstreamConfig) -> Result<Client, NoRegion> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c));
    if let Some(region) = &c.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(NoRegion);
    }
    let mut builder = aws_sdk_cloudtrail::config::Builder::from(&shared);
    if let Some(url) = &c.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    Ok(Client::from_conf(builder.build()))
}

/// The client for the embedded CloudTrail: same SDK pipeline (signing included), in-process transport.
pub fn local_client(c: &UpstreamConfig, local: &LocalCloudTrail) -> Client {
    let region = c.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new(
            "AKIDLOCALGATEWAY0000",
            "local-secret-not-used-for-anything",
            None,
            None,
            "embedded",
        ))
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c))
        .http_client(local.clone())
        .build();
    Client::from_conf(config)
}

/// The client for the configured upstream.
pub async fn client(c: &UpstreamConfig, local: &LocalCloudTrail) -> Result<Client, NoRegion> {
    match c.kind {
        UpstreamKind::Local => Ok(local_client(c, local)),
        UpstreamKind::Aws => aws_client(c).await,
    }
}
