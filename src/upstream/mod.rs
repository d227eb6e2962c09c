//! The SDK clients the gateway calls CloudTrail with: one per (account, Region, identity), built on
//! first use from one base configuration (retries, timeouts, one HTTP client and so one connection
//! pool), kept in a bounded cache and dropped when idle.
//!
//! Which identity a call is made as:
//! - with `[[accounts]]`: a role session in the target account, as the caller (`sessions`: STS
//!   AssumeRole with the principal as SourceIdentity). The gateway's own credentials only assume
//!   roles; a call whose session cannot be had fails, it is never made as the gateway instead.
//! - without, against AWS (or a compatible endpoint): the gateway's own credentials from the AWS
//!   config chain.
//! - without, against the embedded CloudTrail: an access key of its own per principal, so the events
//!   it records name the caller.

pub mod sessions;
mod who;

use std::{sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_cloudtrail::{
    Client,
    config::{Credentials, IdentityCache},
};
use cloudtrail_local::{LocalCloudTrail, Role};

use crate::{
    accounts::{Account, Accounts, AccountsConfig, Target},
    config::{LOCAL_DEFAULT_REGION, RetryMode, UpstreamConfig, UpstreamKind},
    error::Error,
    principal::Principal,
};
use sessions::{SessionKey, Sessions};
pub use who::Who;

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

/// Who a call is made as when no principal makes it (authentication off, the health probe).
pub const GATEWAY: &str = crate::principal::GATEWAY;

/// How the identity of a call's credentials is chosen.
#[derive(Debug)]
enum Identities {
    /// The gateway's own credentials (in the base configuration), for every caller.
    Own,
    /// The embedded CloudTrail without accounts: the key it issued to the principal's name.
    LocalUsers(LocalCloudTrail),
    /// A role session per (caller, account).
    Sessions(Arc<Sessions>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    target: Target,
    who: Who,
}

#[derive(Debug)]
struct Inner {
    base: aws_sdk_cloudtrail::Config,
    /// The CloudTrail-compatible endpoint configured instead of AWS's, if any.
    endpoint: Option<Arc<str>>,
    identities: Identities,
    clients: moka::sync::Cache<ClientKey, Client>,
    accounts: Accounts,
    /// `GATEWAY`, and "" (the one identity of `Own`), allocated once.
    gateway: Arc<str>,
    own: Arc<str>,
}

/// What the gateway talks to: the accounts and Regions, and the clients to reach them.
#[derive(Debug, Clone)]
pub struct Upstream(Arc<Inner>);

impl Upstream {
    fn new(
        base: aws_sdk_cloudtrail::Config,
        identities: Identities,
        accounts: Accounts,
        config: &AccountsConfig,
        endpoint: Option<&str>,
    ) -> Upstream {
        Upstream(Arc::new(Inner {
            base,
            endpoint: endpoint.map(Arc::from),
            identities,
            clients: moka::sync::Cache::builder()
                .max_capacity(config.max_clients)
                .time_to_idle(config.client_idle)
                .build(),
            accounts,
            gateway: Arc::from(GATEWAY),
            own: Arc::from(""),
        }))
    }

    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }

    /// Where calls go, as errors name it: the configured endpoint, or AWS.
    pub fn endpoint(&self) -> &str {
        self.0.endpoint.as_deref().unwrap_or("CloudTrail")
    }

    /// Whether calls are made through role sessions (then `prepare` has work to do).
    pub fn uses_sessions(&self) -> bool {
        matches!(self.0.identities, Identities::Sessions(_))
    }

    /// Whom `caller`'s calls are made as.
    fn who(&self, caller: Option<&Principal>) -> Who {
        let inner = &*self.0;
        match (&inner.identities, caller) {
            (Identities::Own, _) => Who::own(inner.own.clone()),
            (Identities::Sessions(s), Some(p)) if s.caller_identity() => Who::caller(p),
            (Identities::LocalUsers(_), Some(p)) => Who::caller(p),
            _ => Who::own(inner.gateway.clone()),
        }
    }

    /// The client to make `caller`'s calls to `target` with. Building one sends nothing: a role
    /// session is assumed when a call first needs it (see `prepare`).
    pub fn client(&self, target: &Target, caller: Option<&Principal>) -> Client {
        self.client_of(target, self.who(caller))
    }

    /// The client for calls the gateway makes on its own as `name` (its health probe).
    pub fn client_as(&self, target: &Target, name: &str) -> Client {
        let who = match self.0.identities {
            Identities::Own => self.0.own.clone(),
            _ => Arc::from(name),
        };
        self.client_of(target, Who::own(who))
    }

    fn client_of(&self, target: &Target, who: Who) -> Client {
        let key = ClientKey {
            target: target.clone(),
            who,
        };
        self.0.clients.get_with_by_ref(&key, || self.build(&key))
    }

    fn build(&self, key: &ClientKey) -> Client {
        let inner = &*self.0;
        let mut config = inner
            .base
            .to_builder()
            .region(Region::new(key.target.region.to_string()));
        match &inner.identities {
            Identities::Own => {}
            Identities::LocalUsers(local) => {
                let user = local.user_key(&key.who.name);
                config = config.credentials_provider(Credentials::new(
                    user.access_key_id,
                    user.secret_access_key,
                    None,
                    None,
                    "embedded",
                ));
            }
            Identities::Sessions(sessions) => {
                let session = SessionKey::new(key.who.clone(), key.target.account.clone());
                if let Some(account) = inner.accounts.account(&key.target.account) {
                    config = config
                        .credentials_provider(sessions.provider(session.clone(), account.clone()))
                        // The session cache is the only one: a session it drops is gone.
                        .identity_cache(IdentityCache::no_cache())
                        .retry_classifier(sessions.renew_expired(session));
                }
            }
        }
        Client::from_conf(config.build())
    }

    /// Makes sure `caller`'s calls to `target` have credentials, before anything is sent: with role
    /// sessions, from the cache or STS, failing with a clear status (never falling back to the
    /// gateway's own identity).
    pub async fn prepare(&self, target: &Target, caller: Option<&Principal>) -> Result<(), Error> {
        let Identities::Sessions(sessions) = &self.0.identities else {
            return Ok(());
        };
        let account = self.account(target)?;
        let key = SessionKey::new(self.who(caller), target.account.clone());
        sessions.credentials(&key, account).await?;
        Ok(())
    }

    fn account(&self, target: &Target) -> Result<&Account, Error> {
        self.0.accounts.account(&target.account).ok_or_else(|| {
            Error::Refused(crate::error::Refused::new(
                tonic::Code::NotFound,
                "AccountNotConfigured",
                format!("account {} is not configured", target.account),
            ))
        })
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

/// The STS client the gateway assumes roles with: its own credentials, the STS Region, and the
/// endpoint (a CloudTrail-compatible endpoint such as moto serves STS on the same address).
fn sts_client(
    shared: &aws_config::SdkConfig,
    region: &str,
    endpoint_url: Option<&str>,
) -> aws_sdk_sts::Client {
    let mut sts = aws_sdk_sts::config::Builder::from(shared).region(Region::new(region.to_owned()));
    if let Some(url) = endpoint_url {
        sts = sts.endpoint_url(url);
    }
    aws_sdk_sts::Client::from_conf(sts.build())
}

/// The upstream for `aws`: credentials and (unless configured) the Region from aws-config's default
/// chain (environment, profiles, SSO, web identity, container and instance metadata). Without
/// accounts, the account is configured or asked of STS once.
pub async fn aws(c: &UpstreamConfig, a: &AccountsConfig) -> Result<Upstream, ConnectError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c));
    if let Some(region) = &c.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_cloudtrail::config::Builder::from(&shared)
        .interceptor(crate::telemetry::AttemptCounter::new());
    if let Some(url) = &c.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    let base = builder.build();
    let endpoint = c.endpoint_url.as_deref();
    if !a.accounts.is_empty() {
        let accounts = Accounts::configured(a);
        let sts_region = a
            .sts_region
            .clone()
            .unwrap_or_else(|| accounts.default_target().region.to_string());
        let sessions = Sessions::new(
            sts_client(&shared, &sts_region, endpoint),
            a.caller_identity,
        );
        return Ok(Upstream::new(
            base,
            Identities::Sessions(Arc::new(sessions)),
            accounts,
            a,
            endpoint,
        ));
    }
    let region = shared.region().ok_or(ConnectError::NoRegion)?.to_string();
    let account = match &c.account_id {
        Some(account) => account.clone(),
        None => caller_account(&sts_client(&shared, &region, endpoint)).await?,
    };
    let accounts = Accounts::single(a, &account, &region);
    Ok(Upstream::new(base, Identities::Own, accounts, a, endpoint))
}

async fn caller_account(sts: &aws_sdk_sts::Client) -> Result<String, ConnectError> {
    match tokio::time::timeout(STS_TIMEOUT, sts.get_caller_identity().send()).await {
        Ok(Ok(identity)) => identity
            .account
            .ok_or_else(|| ConnectError::Account("no account in the answer".into())),
        Ok(Err(e)) => Err(ConnectError::Account(
            aws_sdk_sts::error::DisplayErrorContext(e).to_string(),
        )),
        Err(_) => Err(ConnectError::Account("timed out".into())),
    }
}

/// The base SDK configuration for the embedded CloudTrail: the same pipeline as against AWS
/// (signing included), an in-process transport.
fn local_base(c: &UpstreamConfig, local: &LocalCloudTrail) -> aws_sdk_cloudtrail::Config {
    aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            c.region
                .clone()
                .unwrap_or_else(|| LOCAL_DEFAULT_REGION.to_owned()),
        ))
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c))
        .http_client(local.clone())
        .interceptor(crate::telemetry::AttemptCounter::new())
        .build()
}

/// A plain SDK client on the embedded CloudTrail, as its default user (benchmarks compare the
/// gateway with it).
pub fn local_client(c: &UpstreamConfig, local: &LocalCloudTrail) -> Client {
    let user = local.user_key(GATEWAY);
    let config = local_base(c, local)
        .to_builder()
        .credentials_provider(Credentials::new(
            user.access_key_id,
            user.secret_access_key,
            None,
            None,
            "embedded",
        ))
        .build();
    Client::from_conf(config)
}

/// The upstream for the embedded CloudTrail. With accounts, their roles are added to its STS
/// (trusting the gateway, with the configured external ids), and sessions are assumed there with
/// the gateway's own key, as against AWS.
pub fn local(c: &UpstreamConfig, a: &AccountsConfig, local: &LocalCloudTrail) -> Upstream {
    let base = local_base(c, local);
    if a.accounts.is_empty() {
        let region = c
            .region
            .clone()
            .unwrap_or_else(|| LOCAL_DEFAULT_REGION.to_owned());
        let accounts = Accounts::single(a, local.account_id(), &region);
        return Upstream::new(
            base,
            Identities::LocalUsers(local.clone()),
            accounts,
            a,
            Some("the embedded CloudTrail"),
        );
    }
    for account in &a.accounts {
        if let Some(role) = &account.role {
            let name = role.arn.rsplit('/').next().unwrap_or_default();
            local.add_role(Role {
                external_id: role.external_id.clone(),
                max_session_duration: role.session_duration.max(Duration::from_secs(3600)),
                ..Role::new(account.id.clone(), name)
            });
        }
    }
    let accounts = Accounts::configured(a);
    let own = local.user_key(GATEWAY);
    let sts_region = a
        .sts_region
        .clone()
        .unwrap_or_else(|| accounts.default_target().region.to_string());
    let sts = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(sts_region))
        .retry_config(retry_config(c))
        .timeout_config(timeout_config(c))
        .http_client(local.clone())
        .credentials_provider(Credentials::new(
            own.access_key_id,
            own.secret_access_key,
            None,
            None,
            "embedded",
        ))
        .build();
    let sessions = Sessions::new(aws_sdk_sts::Client::from_conf(sts), a.caller_identity);
    Upstream::new(
        base,
        Identities::Sessions(Arc::new(sessions)),
        accounts,
        a,
        Some("the embedded CloudTrail"),
    )
}

/// The configured upstream.
pub async fn connect(
    c: &UpstreamConfig,
    a: &AccountsConfig,
    embedded: &LocalCloudTrail,
) -> Result<Upstream, ConnectError> {
    match c.kind {
        UpstreamKind::Local => Ok(local(c, a, embedded)),
        UpstreamKind::Aws => aws(c, a).await,
    }
}
