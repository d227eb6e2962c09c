//! The SDK clients the gateway calls CloudTrail with: Region, credentials, endpoint, retries and
//! timeouts, built once per identity and shared by every call made as it.
//!
//! Against AWS (or a compatible endpoint) every call uses the gateway's own credentials from the AWS
//! config chain. Against the embedded CloudTrail each principal gets an access key of its own from
//! the emulator, so the events it records name the caller.

use std::{sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_cloudtrail::{Client, config::Credentials};
use cloudtrail_local::LocalCloudTrail;

use crate::{
    config::{LOCAL_DEFAULT_REGION, RetryMode, UpstreamConfig, UpstreamKind},
    principal::Principal,
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

/// Who a call is made as, when no principal makes it (authentication off).
const GATEWAY_USER: &str = "cloudtrail-gateway";

/// Per-principal clients kept for the embedded CloudTrail, at most this many (least recently used
/// go first), and dropped after this long unused.
const MAX_PRINCIPAL_CLIENTS: u64 = 10_000;
const PRINCIPAL_CLIENT_IDLE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
enum Clients {
    /// One client for every caller: the gateway's own credentials.
    Shared(Client),
    /// The embedded CloudTrail: a client per principal, signed with the key the emulator issued to
    /// that principal's name.
    PerPrincipal(Arc<PerPrincipal>),
}

#[derive(Debug)]
struct PerPrincipal {
    local: LocalCloudTrail,
    config: aws_sdk_cloudtrail::Config,
    cache: moka::sync::Cache<Arc<str>, Client>,
}

/// What the gateway talks to: the clients, and the account and Region its quotas belong to.
#[derive(Debug, Clone)]
pub struct Upstream {
    clients: Clients,
    pub account: String,
    pub region: String,
}

impl Upstream {
    /// The client to make `caller`'s calls with.
    pub fn client_for(&self, caller: Option<&Principal>) -> Client {
        self.client_named(caller.map_or(GATEWAY_USER, |p| &p.name))
    }

    /// The client for calls the gateway makes as `name` (its health probe, say).
    pub fn client_named(&self, name: &str) -> Client {
        match &self.clients {
            Clients::Shared(client) => client.clone(),
            Clients::PerPrincipal(per) => {
                let PerPrincipal {
                    local,
                    config,
                    cache,
                } = &**per;
                if let Some(client) = cache.get(name) {
                    return client;
                }
                cache.get_with(Arc::from(name), || {
                    let key = local.user_key(name);
                    let credentials = Credentials::new(
                        key.access_key_id,
                        key.secret_access_key,
                        None,
                        None,
                        "embedded",
                    );
                    let config = config
                        .to_builder()
                        .credentials_provider(credentials)
                        .build();
                    Client::from_conf(config)
                })
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "invalid setting `region`: not set, and the AWS config chain (AWS_REGION, profile) has none"
    )]
    NoRegion,
    #[error("invalid setting `account_id`: not set, and STS GetCallerIdentity failed: {0}")]
    Account(String),
}

/// How long resolving the account through STS may take at start.
const STS_TIMEOUT: Duration = Duration::from_secs(5);

/// The client for `aws`: credentials and (unless configured) the Region from aws-config's default
/// chain (environment, profiles, SSO, web identity, container and instance metadata). The account
/// is configured or asked of STS once.
pub async fn aws(c: &UpstreamConfig) -> Result<Upstream, ConnectError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c));
    if let Some(region) = &c.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let region = shared.region().ok_or(ConnectError::NoRegion)?.to_string();
    let mut builder = aws_sdk_cloudtrail::config::Builder::from(&shared)
        .interceptor(crate::telemetry::AttemptCounter::new());
    if let Some(url) = &c.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    let account = match &c.account_id {
        Some(account) => account.clone(),
        None => caller_account(&shared, c.endpoint_url.as_deref()).await?,
    };
    Ok(Upstream {
        clients: Clients::Shared(Client::from_conf(builder.build())),
        account,
        region,
    })
}

async fn caller_account(
    shared: &aws_config::SdkConfig,
    endpoint_url: Option<&str>,
) -> Result<String, ConnectError> {
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
            .ok_or_else(|| ConnectError::Account("no account in the answer".into())),
        Ok(Err(e)) => Err(ConnectError::Account(
            aws_sdk_sts::error::DisplayErrorContext(e).to_string(),
        )),
        Err(_) => Err(ConnectError::Account("timed out".into())),
    }
}

/// The clients for the embedded CloudTrail: the same SDK pipeline (signing included), an in-process
/// transport, and a key per principal.
pub fn local(c: &UpstreamConfig, local: &LocalCloudTrail) -> Upstream {
    let region = c
        .region
        .clone()
        .unwrap_or_else(|| LOCAL_DEFAULT_REGION.to_owned());
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c))
        .http_client(local.clone())
        .interceptor(crate::telemetry::AttemptCounter::new())
        .build();
    Upstream {
        clients: Clients::PerPrincipal(Arc::new(PerPrincipal {
            local: local.clone(),
            config,
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_PRINCIPAL_CLIENTS)
                .time_to_idle(PRINCIPAL_CLIENT_IDLE)
                .build(),
        })),
        account: local.account_id().to_owned(),
        region,
    }
}

/// The configured upstream.
pub async fn connect(
    c: &UpstreamConfig,
    embedded: &LocalCloudTrail,
) -> Result<Upstream, ConnectError> {
    match c.kind {
        UpstreamKind::Local => Ok(local(c, embedded)),
        UpstreamKind::Aws => aws(c).await,
    }
}
