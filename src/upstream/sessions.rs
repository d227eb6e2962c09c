//! Role sessions: the credentials each call to a configured account is made with. One STS
//! AssumeRole per (principal, account), with the principal as SourceIdentity (CloudTrail records it
//! on every call of the session, and no one can change it), as the session's name and as a session
//! tag. Sessions are cached until five minutes before they expire, concurrent misses share one STS
//! call, and the cache is bounded. A session CloudTrail no longer accepts (expired early, revoked)
//! is dropped and the call retried with a new one. The gateway's own credentials are used for
//! nothing but AssumeRole; when a session cannot be had the call fails with a status saying why.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use aws_sdk_cloudtrail::config::{
    Credentials, ProvideCredentials,
    interceptors::InterceptorContext,
    retry::{ClassifyRetry, RetryAction},
};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
use aws_smithy_types::retry::ErrorKind;
use tonic::Code;

use super::who::Who;
use crate::{
    accounts::{Account, AccountRole, names},
    error::Refused,
    principal::GATEWAY,
    telemetry,
};

/// Sessions are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Sessions kept at most (the least recently used go first).
const MAX_SESSIONS: u64 = 100_000;
/// How long a caller is asked to wait when STS is unreachable or throttles.
const STS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Whose session, in which account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    who: Who,
    account: Arc<str>,
}

impl SessionKey {
    pub fn new(who: Who, account: Arc<str>) -> SessionKey {
        SessionKey { who, account }
    }
}

#[derive(Debug, Clone)]
struct Session {
    credentials: Credentials,
    renew_at: Instant,
}

/// Entries live until their session is due for renewal.
struct UntilRenewal;

impl moka::Expiry<SessionKey, Session> for UntilRenewal {
    fn expire_after_create(
        &self,
        _: &SessionKey,
        session: &Session,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(session.renew_at.saturating_duration_since(created_at))
    }
}

pub struct Sessions {
    sts: aws_sdk_sts::Client,
    cache: moka::future::Cache<SessionKey, Session>,
    /// Sessions CloudTrail refused as expired, to be dropped before their next use.
    expired: Mutex<HashSet<SessionKey>>,
    any_expired: AtomicBool,
    /// Sessions are made as the caller (SourceIdentity, session name and tag); else as the gateway.
    caller_identity: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("caller_identity", &self.caller_identity)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(sts: aws_sdk_sts::Client, caller_identity: bool) -> Sessions {
        Sessions {
            sts,
            cache: moka::future::Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .expire_after(UntilRenewal)
                .build(),
            expired: Mutex::new(HashSet::new()),
            any_expired: AtomicBool::new(false),
            caller_identity,
        }
    }

    pub fn caller_identity(&self) -> bool {
        self.caller_identity
    }

    /// The credentials of `key`'s session, from the cache or from STS.
    pub async fn credentials(
        &self,
        key: &SessionKey,
        account: &Account,
    ) -> Result<Credentials, Refused> {
        let Some(role) = &account.role else {
            return Err(Refused::new(
                Code::Internal,
                "NoRole",
                format!("account {} has no role to assume", account.id),
            ));
        };
        if self.any_expired.load(Ordering::Relaxed) && self.take_expired(key) {
            self.cache.invalidate(key).await;
        }
        self.cache
            .try_get_with_by_ref(key, self.assume(key, role))
            .await
            .map(|session| session.credentials)
            .map_err(|e| (*e).clone())
    }

    fn take_expired(&self, key: &SessionKey) -> bool {
        let mut expired = self.expired.lock().unwrap_or_else(|p| p.into_inner());
        let was = expired.remove(key);
        self.any_expired
            .store(!expired.is_empty(), Ordering::Relaxed);
        was
    }

    /// Marks `key`'s session as refused by CloudTrail: its next use assumes a new one.
    fn expire(&self, key: &SessionKey) {
        let mut expired = self.expired.lock().unwrap_or_else(|p| p.into_inner());
        expired.insert(key.clone());
        self.any_expired.store(true, Ordering::Relaxed);
    }

    async fn assume(&self, key: &SessionKey, role: &AccountRole) -> Result<Session, Refused> {
        let who = &*key.who.name;
        let tag = |name: &str, value: String| {
            aws_sdk_sts::types::Tag::builder()
                .key(name)
                .value(value)
                .build()
                .map_err(|e| Refused::new(Code::Internal, "SessionTag", e.to_string()))
        };
        let mut request = self
            .sts
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(names::session_name(who))
            .duration_seconds(i32::try_from(role.session_duration.as_secs()).unwrap_or(3600))
            .set_external_id(role.external_id.clone())
            .tags(tag("gateway", GATEWAY.to_owned())?);
        if self.caller_identity {
            request = request
                .source_identity(names::source_identity(who))
                .tags(tag("principal", names::tag_value(who))?);
        }
        let started = Instant::now();
        let answer = request.send().await;
        let outcome = if answer.is_ok() { "ok" } else { "error" };
        metrics::counter!(telemetry::STS_REQUESTS, "outcome" => outcome).increment(1);
        let output = answer.map_err(|e| sts_error(e, who, role))?;
        let credentials = output.credentials.ok_or_else(|| {
            Refused::new(
                Code::Unavailable,
                "StsAnswer",
                "STS answered AssumeRole without credentials",
            )
            .retry_after(STS_RETRY_AFTER)
        })?;
        let expires = SystemTime::try_from(credentials.expiration)
            .unwrap_or_else(|_| SystemTime::now() + role.session_duration);
        let lifetime = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tracing::debug!(principal = who, account = %key.account, ?lifetime, took_ms = started.elapsed().as_millis() as u64, "role session");
        Ok(Session {
            credentials: Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                Some(credentials.session_token),
                Some(expires),
                "cloudtrail-gateway-sts",
            ),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE),
        })
    }

    /// The SDK credentials provider of `key`'s session in `account`.
    pub fn provider(self: &Arc<Self>, key: SessionKey, account: Account) -> SessionCredentials {
        SessionCredentials {
            sessions: self.clone(),
            key,
            account,
        }
    }

    /// The retry classifier that drops `key`'s session when CloudTrail refuses it as expired, and
    /// has the SDK retry the call (its next attempt asks the provider, which assumes a new one).
    pub fn renew_expired(self: &Arc<Self>, key: SessionKey) -> RenewExpired {
        RenewExpired {
            sessions: self.clone(),
            key,
        }
    }
}

/// What a failed AssumeRole means for the caller. The trust policy is the usual cause of a refusal.
fn sts_error<E>(
    error: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    who: &str,
    role: &AccountRole,
) -> Refused
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let arn = &role.arn;
    let detail = error.message().unwrap_or_default().to_owned();
    match error.code() {
        Some("AccessDenied") => Refused::new(
            Code::PermissionDenied,
            "AssumeRoleDenied",
            format!(
                "STS refused to let the gateway assume {arn} for '{who}': {detail} (the role's trust policy must allow the gateway sts:AssumeRole, sts:SetSourceIdentity and sts:TagSession)"
            ),
        ),
        Some(code) if code.contains("Throttl") => Refused::new(
            Code::Unavailable,
            "StsThrottled",
            format!("STS throttled AssumeRole of {arn}; retry shortly"),
        )
        .retry_after(STS_RETRY_AFTER),
        Some("RegionDisabledException") => Refused::new(
            Code::FailedPrecondition,
            "StsRegionDisabled",
            format!("STS is not activated in the gateway's STS Region: {detail}"),
        ),
        Some("ExpiredToken" | "ExpiredTokenException" | "InvalidClientTokenId") => Refused::new(
            Code::Internal,
            "GatewayCredentialsRefused",
            format!("STS refused the gateway's own credentials: {detail}"),
        ),
        Some(code) => Refused::new(
            Code::FailedPrecondition,
            "AssumeRoleRefused",
            format!("STS refused AssumeRole of {arn} ({code}): {detail}"),
        ),
        None => Refused::new(
            Code::Unavailable,
            "StsUnreachable",
            format!(
                "cannot reach STS to assume {arn}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&error)
            ),
        )
        .retry_after(STS_RETRY_AFTER),
    }
}

/// The SDK's view of one principal's session in one account: each attempt asks the session cache
/// (the client has no identity cache of its own, so a dropped session is really gone).
#[derive(Debug, Clone)]
pub struct SessionCredentials {
    sessions: Arc<Sessions>,
    key: SessionKey,
    account: Account,
}

impl ProvideCredentials for SessionCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            self.sessions
                .credentials(&self.key, &self.account)
                .await
                .map_err(aws_credential_types::provider::error::CredentialsError::provider_error)
        })
    }
}

/// See [`Sessions::renew_expired`].
#[derive(Debug)]
pub struct RenewExpired {
    sessions: Arc<Sessions>,
    key: SessionKey,
}

/// Whether an error answer says the request's security token expired (AWS's `ExpiredTokenException`,
/// in the `X-Amzn-ErrorType` header or the JSON body's `__type`).
fn says_expired(ctx: &InterceptorContext) -> bool {
    let Some(response) = ctx.response() else {
        return false;
    };
    if response.status().is_success() {
        return false;
    }
    let is_expired = |kind: &str| {
        let name = kind.rsplit('#').next().unwrap_or(kind);
        let name = name.split(':').next().unwrap_or(name);
        matches!(name, "ExpiredTokenException" | "ExpiredToken")
    };
    if response
        .headers()
        .get("x-amzn-errortype")
        .is_some_and(is_expired)
    {
        return true;
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        kind: Option<String>,
    }
    response
        .body()
        .bytes()
        .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
        .and_then(|body| body.kind)
        .is_some_and(|kind| is_expired(&kind))
}

impl ClassifyRetry for RenewExpired {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        if says_expired(ctx) {
            self.sessions.expire(&self.key);
            RetryAction::retryable_error(ErrorKind::TransientError)
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "RenewExpiredRoleSession"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}
