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

/// What the gateway talks to: the client, and the account and Region its quotas belong to.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub client: Client,
    pub account: String,
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "invalid setting `region`: not set, and the AWS config chain (AWS_REGION, profile) has none"
    )]
    NoRegion,
    #[error("invalid setting `account_id`: not set, and STS GetCallerIdentity failed: {0}")]
    Account(String),
}

/// How long resolving the account through STS may take at start.
const STS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The client for `aws`: credentials and (unless configured) the Region from aws-config's default
/// chain (environment, profiles, SSO, web identity, container and instance metadata). The account
/// is configured or asked of STS once.
pub async fn aws(c: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c));
    if let Some(region) = &c.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let region = shared.region().ok_or(UpstreamError::NoRegion)?.to_string();
    let mut builder = aws_sdk_cloudtrail::config::Builder::from(&shared);
    if let Some(url) = &c.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    let account = match &c.account_id {
        Some(account) => account.clone(),
        None => caller_account(&shared, c.endpoint_url.as_deref()).await?,
    };
    Ok(Upstream {
        client: Client::from_conf(builder.build()),
        account,
        region,
    })
}

async fn caller_account(
    shared: &aws_config::SdkConfig,
    endpoint_url: Option<&str>,
) -> Result<String, UpstreamError> {
    let mut sts = aws_sdk_sts::config::Builder::from(shared);
    if let Some(url) = endpoint_url {
        // A CloudTrail-compatible endpoint (moto) serves STS on the same address.
        sts = sts.endpoint_url(url);
    }
    let call = aws_sdk_sts::Client::from_conf(sts.build())
        .get_caller_identity()
        .send();
    match tokio::time::timeout(STS_TIMEOUT, call).await {
        Ok(Ok(identity)) => identity
            .account
            .ok_or_else(|| UpstreamError::Account("no account in the answer".into())),
        Ok(Err(e)) => Err(UpstreamError::Account(
            aws_sdk_sts::error::DisplayErrorContext(e).to_string(),
        )),
        Err(_) => Err(UpstreamError::Account("timed out".into())),
    }
}

/// The client for the embedded CloudTrail: same SDK pipeline (signing included), in-process transport.
pub fn local(c: &UpstreamConfig, local: &LocalCloudTrail) -> Upstream {
    let region = c.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
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
    Upstream {
        client: Client::from_conf(config),
        account: local.account_id().to_owned(),
        region,
    }
}

/// The configured upstream.
pub async fn connect(
    c: &UpstreamConfig,
    embedded: &LocalCloudTrail,
) -> Result<Upstream, UpstreamError> {
    match c.kind {
        UpstreamKind::Local => Ok(local(c, embedded)),
        UpstreamKind::Aws => aws(c).await,
    }
}
