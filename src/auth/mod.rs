//! Authentication (static tokens, JWTs, client certificates) and per-method authorization.
//!
//! `Authenticator::decide` turns a request's path, `authorization` header and client certificate into
//! a `Decision`; the tower layer in `middleware::auth` acts on it. Nothing here sees an RPC's fields.

pub mod certificates;
pub mod jwt;
pub mod policy;
pub mod tokens;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
};

use crate::{
    operation::Operation,
    principal::{AuthMethod, Principal},
};
use certificates::{CertificateEntry, CertificateProblem};
use jwt::{Checked, JwksError, JwtConfig, JwtProblem, JwtVerifier};
use policy::{Policy, RoleEntry, Scope, UnknownRpc};
use tokens::{BadHash, TokenEntry, Tokens};

/// Server TLS, and the CA that client certificates must chain to (which makes them required).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA client certificates must chain to; none: client certificates are not asked for.
    pub client_ca: Option<PathBuf>,
    /// With a client CA: whether every connection must present a certificate.
    pub client_certificates: ClientCertificates,
}

/// Whether client certificates are required, or verified only when presented (callers without one
/// authenticate with a token or JWT; health and reflection stay reachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientCertificates {
    #[default]
    Optional,
    Required,
}

/// Everything about who may call what.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenEntry>,
    pub certificates: Vec<CertificateEntry>,
    pub roles: BTreeMap<String, RoleEntry>,
    pub jwt: Option<JwtConfig>,
    pub tls: Option<TlsConfig>,
    /// Health and reflection reachable without credentials.
    pub open_health: bool,
    /// Explicitly run without authentication on a non-loopback address.
    pub insecure_no_auth: bool,
    /// Whether a client certificate without a SPIFFE id is named by its subject CN.
    pub certificate_cn_principal: bool,
}

impl AuthConfig {
    /// Whether any way to authenticate is configured; without one, every caller is let through.
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
            || self.jwt.is_some()
            || self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(transparent)]
    Token(#[from] BadHash),
    #[error(transparent)]
    Role(#[from] UnknownRpc),
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// Why a caller is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No credentials at all.
    Missing,
    /// An `authorization` header that is not `Bearer <token>`.
    Scheme,
    /// A bearer token that is neither a configured token nor a JWT.
    UnknownToken,
    Jwt(JwtProblem),
    Certificate(CertificateProblem),
    /// A valid credential naming a principal the gateway uses itself (`principal::RESERVED`).
    Reserved,
    /// More than one `authorization` header.
    Several,
}

impl Failure {
    /// Every failure there is (for their metric series to exist, at zero, from the start).
    pub fn all() -> impl Iterator<Item = Failure> {
        [
            Failure::Missing,
            Failure::Scheme,
            Failure::UnknownToken,
            Failure::Reserved,
            Failure::Several,
        ]
        .into_iter()
        .chain(JwtProblem::ALL.map(Failure::Jwt))
        .chain(CertificateProblem::ALL.map(Failure::Certificate))
    }

    /// A short label for logs and metrics (never the credential itself).
    pub fn label(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::Scheme => "scheme",
            Failure::UnknownToken => "unknown_token",
            Failure::Reserved => "reserved_principal",
            Failure::Several => "several_credentials",
            Failure::Jwt(p) => p.label(),
            Failure::Certificate(CertificateProblem::Unparsable) => "certificate_unparsable",
            Failure::Certificate(CertificateProblem::SeveralSpiffeIds) => "certificate_spiffe_ids",
            Failure::Certificate(CertificateProblem::Anonymous) => "certificate_anonymous",
            Failure::Certificate(CertificateProblem::BadSpiffeId) => "certificate_bad_spiffe_id",
        }
    }
}

/// The metric label of a call refused PERMISSION_DENIED.
pub const DENIED_LABEL: &str = "permission_denied";

/// What to do with a request.
#[derive(Debug)]
pub enum Decision {
    /// No authentication configured, or an open path (health, reflection).
    Open,
    Allowed(Principal),
    Unauthenticated(Failure),
    Denied {
        principal: Principal,
        operation: Operation,
    },
}

#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    open_health: bool,
    tokens: Tokens,
    token_principals: Vec<Principal>,
    jwt: Option<Arc<JwtVerifier>>,
    /// A certificate identity's roles and scope.
    certificate_grants: HashMap<String, (Arc<[String]>, Arc<Scope>)>,
    certificate_cn_principal: bool,
    policy: Arc<Policy>,
}

impl Authenticator {
    /// Checks the configuration and loads the JWKS (if any).
    pub async fn new(config: &AuthConfig) -> Result<Authenticator, AuthSetupError> {
        for reason in Failure::all().map(Failure::label).chain([DENIED_LABEL]) {
            metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => reason).increment(0);
        }
        let jwt = match &config.jwt {
            Some(jwt) => Some(JwtVerifier::new(jwt.clone(), jwt.required_at_start).await?),
            None => None,
        };
        Ok(Authenticator {
            enabled: config.is_enabled(),
            open_health: config.open_health,
            tokens: Tokens::new(&config.tokens)?,
            token_principals: config
                .tokens
                .iter()
                .map(|t| {
                    Principal::new(
                        &t.principal,
                        t.roles.clone().into(),
                        AuthMethod::StaticToken,
                        Arc::new(Scope::new(&t.accounts, &t.regions)),
                        None,
                    )
                })
                .collect(),
            jwt,
            certificate_cn_principal: config.certificate_cn_principal,
            certificate_grants: config
                .certificates
                .iter()
                .map(|c| {
                    let scope = Arc::new(Scope::new(&c.accounts, &c.regions));
                    (c.principal.clone(), (c.roles.clone().into(), scope))
                })
                .collect(),
            policy: Arc::new(Policy::new(&config.roles)?),
        })
    }

    /// The roles' grants, for the check of a call's target (which the API makes).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.clone()
    }

    pub fn jwt(&self) -> Option<&Arc<JwtVerifier>> {
        self.jwt.as_ref()
    }

    /// Whether `path` is served without credentials (no authentication configured, or health and
    /// reflection left open).
    pub fn is_open(&self, path: &str) -> bool {
        !self.enabled || (self.open_health && is_open_path(path))
    }

    /// What to do with a request: decided now, or (a JWT signed with a key not held yet) once the
    /// key set was refreshed.
    pub fn decide(
        self: &Arc<Self>,
        path: &str,
        authorization: Option<&[u8]>,
        client_certificate: Option<&[u8]>,
    ) -> Verdict {
        if self.is_open(path) {
            return Verdict::Now(Decision::Open);
        }
        match self.authenticate(authorization, client_certificate) {
            Ok(principal) => Verdict::Now(self.authorize(path, principal)),
            Err(Pending::Failed(failure)) => Verdict::Now(Decision::Unauthenticated(failure)),
            Err(Pending::KeyNotHeld(token)) => {
                let (this, path) = (self.clone(), Operation::from_path(path));
                Verdict::Later(Box::pin(async move {
                    let Some(jwt) = &this.jwt else {
                        return Decision::Unauthenticated(Failure::UnknownToken);
                    };
                    match jwt.verify(&token).await {
                        Ok((name, roles)) => match jwt_principal(jwt, name, roles) {
                            Ok(principal) => this.authorize_operation(path, principal),
                            Err(failure) => Decision::Unauthenticated(failure),
                        },
                        Err(problem) => Decision::Unauthenticated(Failure::Jwt(problem)),
                    }
                }))
            }
        }
    }

    fn authorize(&self, path: &str, principal: Principal) -> Decision {
        self.authorize_operation(Operation::from_path(path), principal)
    }

    fn authorize_operation(&self, operation: Option<Operation>, principal: Principal) -> Decision {
        match operation {
            Some(operation) if !self.policy.allows(&principal.roles, operation) => {
                Decision::Denied {
                    principal,
                    operation,
                }
            }
            // RPCs the principal may call; health/reflection when not open; unknown paths (tonic
            // answers UNIMPLEMENTED) for any authenticated caller.
            _ => Decision::Allowed(principal),
        }
    }

    fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client_certificate: Option<&[u8]>,
    ) -> Result<Principal, Pending> {
        if let Some(header) = authorization {
            let token = bearer(header).ok_or(Failure::Scheme)?;
            if let Some(index) = self.tokens.find(token) {
                return Ok(self
                    .token_principals
                    .get(index)
                    .cloned()
                    .ok_or(Failure::UnknownToken)?);
            }
            return match &self.jwt {
                Some(jwt) if token.matches('.').count() == 2 => {
                    match jwt.verify_with_current_keys(token) {
                        Checked::Done(Ok((name, roles))) => Ok(jwt_principal(jwt, name, roles)?),
                        Checked::Done(Err(problem)) => Err(Failure::Jwt(problem).into()),
                        Checked::KeyNotHeld => Err(Pending::KeyNotHeld(token.to_owned())),
                    }
                }
                _ => Err(Failure::UnknownToken.into()),
            };
        }
        if let Some(der) = client_certificate {
            // The TLS layer already verified the chain against the client CA.
            let name = certificates::identity(der, self.certificate_cn_principal)
                .map_err(Failure::Certificate)?;
            let (roles, scope) = self
                .certificate_grants
                .get(&name)
                .cloned()
                .unwrap_or_else(|| (Arc::new([]), Arc::default()));
            if crate::principal::is_reserved(&name) {
                return Err(Failure::Reserved.into());
            }
            return Ok(Principal::new(
                &name,
                roles,
                AuthMethod::Certificate,
                scope,
                None,
            ));
        }
        Err(Failure::Missing.into())
    }
}

/// A verified JWT's principal; a `sub` the gateway uses itself names nobody.
fn jwt_principal(
    jwt: &JwtVerifier,
    name: String,
    roles: Vec<String>,
) -> Result<Principal, Failure> {
    if crate::principal::is_reserved(&name) {
        return Err(Failure::Reserved);
    }
    Ok(Principal::new(
        &name,
        roles.into(),
        AuthMethod::Jwt,
        Arc::default(),
        Some(jwt.issuer()),
    ))
}

/// Why authentication has no answer yet.
enum Pending {
    Failed(Failure),
    /// A JWT signed with a key id the key set does not hold: refresh, then check again.
    KeyNotHeld(String),
}

impl From<Failure> for Pending {
    fn from(failure: Failure) -> Pending {
        Pending::Failed(failure)
    }
}

/// A decision, now or after a wait.
pub enum Verdict {
    Now(Decision),
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Decision> + Send>>),
}

impl Verdict {
    pub async fn resolve(self) -> Decision {
        match self {
            Verdict::Now(decision) => decision,
            Verdict::Later(decision) => decision.await,
        }
    }
}

/// Health and reflection: reachable without credentials unless configured otherwise.
fn is_open_path(path: &str) -> bool {
    let service = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .map(|(service, _)| service);
    matches!(
        service,
        Some(
            tonic_health::pb::health_server::SERVICE_NAME
                | tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME
                | tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME
        )
    )
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer(header: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn config(tokens: &[(&str, &str, &[&str])]) -> AuthConfig {
        AuthConfig {
            tokens: tokens
                .iter()
                .map(|(principal, token, roles)| TokenEntry {
                    principal: (*principal).into(),
                    sha256: Sha256::digest(token.as_bytes())
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    accounts: Vec::new(),
                    regions: Vec::new(),
                })
                .collect(),
            open_health: true,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn tokens_roles_and_open_paths() {
        let auth = Arc::new(
            Authenticator::new(&config(&[("ci", "s3cret", &["reader"])]))
                .await
                .unwrap(),
        );
        let path = |rpc: &str| {
            Operation::from_name(rpc)
                .map(Operation::path)
                .unwrap_or_default()
        };
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), Some(b"Bearer s3cret"), None).resolve().await,
            Decision::Allowed(p) if &*p.name == "ci"
        ));
        assert!(matches!(
            auth.decide(&path("DeleteTrail"), Some(b"bearer s3cret"), None).resolve().await,
            Decision::Denied { operation, .. } if operation == Operation::DeleteTrail
        ));
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), Some(b"Bearer nope"), None)
                .resolve()
                .await,
            Decision::Unauthenticated(Failure::UnknownToken)
        ));
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), Some(b"Basic czNjcmV0"), None)
                .resolve()
                .await,
            Decision::Unauthenticated(Failure::Scheme)
        ));
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), None, None)
                .resolve()
                .await,
            Decision::Unauthenticated(Failure::Missing)
        ));
        assert!(matches!(
            auth.decide("/grpc.health.v1.Health/Check", None, None)
                .resolve()
                .await,
            Decision::Open
        ));
    }

    #[tokio::test]
    async fn without_identities_everything_is_open() {
        let auth = Arc::new(Authenticator::new(&AuthConfig::default()).await.unwrap());
        assert!(matches!(
            auth.decide(&Operation::DeleteTrail.path(), None, None)
                .resolve()
                .await,
            Decision::Open
        ));
    }
}
