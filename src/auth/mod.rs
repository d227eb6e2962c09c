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

use crate::principal::{AuthMethod, Principal};
use certificates::{CertificateEntry, CertificateProblem};
use jwt::{JwksError, JwtConfig, JwtProblem, JwtVerifier};
use policy::{Policy, UnknownRpc};
use tokens::{BadHash, TokenEntry, Tokens};

/// The path prefix of the gateway's own RPCs; what follows is the RPC name.
pub const SERVICE_PREFIX: &str = "/cloudtrail.gateway.v1.CloudTrailService/";

/// Health and reflection: reachable without credentials unless configured otherwise.
const OPEN_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Server TLS, and the CA that client certificates must chain to (which makes them required).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Everything about who may call what.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenEntry>,
    pub certificates: Vec<CertificateEntry>,
    pub roles: BTreeMap<String, Vec<String>>,
    pub jwt: Option<JwtConfig>,
    pub tls: Option<TlsConfig>,
    /// Health and reflection reachable without credentials.
    pub open_health: bool,
    /// Explicitly run without authentication on a non-loopback address.
    pub insecure_no_auth: bool,
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
}

impl Failure {
    /// A short label for logs and metrics (never the credential itself).
    pub fn label(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::Scheme => "scheme",
            Failure::UnknownToken => "unknown_token",
            Failure::Jwt(p) => p.label(),
            Failure::Certificate(CertificateProblem::Unparsable) => "certificate_unparsable",
            Failure::Certificate(CertificateProblem::SeveralSpiffeIds) => "certificate_spiffe_ids",
            Failure::Certificate(CertificateProblem::Anonymous) => "certificate_anonymous",
        }
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Decision {
    /// No authentication configured, or an open path (health, reflection).
    Open,
    Allowed(Principal),
    Unauthenticated(Failure),
    Denied {
        principal: Principal,
        rpc: String,
    },
}

#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    open_health: bool,
    tokens: Tokens,
    token_principals: Vec<Principal>,
    jwt: Option<Arc<JwtVerifier>>,
    certificate_roles: HashMap<String, Arc<[String]>>,
    policy: Policy,
}

impl Authenticator {
    /// Checks the configuration and loads the JWKS (if any).
    pub async fn new(config: &AuthConfig) -> Result<Authenticator, AuthSetupError> {
        let jwt = match &config.jwt {
            Some(jwt) => Some(JwtVerifier::new(jwt.clone()).await?),
            None => None,
        };
        Ok(Authenticator {
            enabled: config.is_enabled(),
            open_health: config.open_health,
            tokens: Tokens::new(&config.tokens)?,
            token_principals: config
                .tokens
                .iter()
                .map(|t| Principal {
                    name: t.principal.as_str().into(),
                    roles: t.roles.clone().into(),
                    method: AuthMethod::StaticToken,
                })
                .collect(),
            jwt,
            certificate_roles: config
                .certificates
                .iter()
                .map(|c| (c.principal.clone(), c.roles.clone().into()))
                .collect(),
            policy: Policy::new(&config.roles)?,
        })
    }

    pub fn jwt(&self) -> Option<&Arc<JwtVerifier>> {
        self.jwt.as_ref()
    }

    pub async fn decide(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        client_certificate: Option<&[u8]>,
    ) -> Decision {
        if !self.enabled || (self.open_health && OPEN_PREFIXES.iter().any(|p| path.starts_with(p)))
        {
            return Decision::Open;
        }
        let principal = match self.authenticate(authorization, client_certificate).await {
            Ok(p) => p,
            Err(failure) => return Decision::Unauthenticated(failure),
        };
        match path.strip_prefix(SERVICE_PREFIX) {
            Some(rpc) if !self.policy.allows(&principal.roles, rpc) => Decision::Denied {
                principal,
                rpc: rpc.to_owned(),
            },
            // Our RPCs the principal may call; health/reflection when not open; unknown paths
            // (tonic answers UNIMPLEMENTED) for any authenticated caller.
            _ => Decision::Allowed(principal),
        }
    }

    async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client_certificate: Option<&[u8]>,
    ) -> Result<Principal, Failure> {
        if let Some(header) = authorization {
            let token = bearer(header).ok_or(Failure::Scheme)?;
            if let Some(index) = self.tokens.find(token) {
                return self
                    .token_principals
                    .get(index)
                    .cloned()
                    .ok_or(Failure::UnknownToken);
            }
            return match &self.jwt {
                Some(jwt) if token.matches('.').count() == 2 => {
                    let (name, roles) = jwt.verify(token).await.map_err(Failure::Jwt)?;
                    Ok(Principal {
                        name: name.into(),
                        roles: roles.into(),
                        method: AuthMethod::Jwt,
                    })
                }
                _ => Err(Failure::UnknownToken),
            };
        }
        if let Some(der) = client_certificate {
            // The TLS layer already verified the chain against the client CA.
            let name = certificates::identity(der).map_err(Failure::Certificate)?;
            let roles = self
                .certificate_roles
                .get(&name)
                .cloned()
                .unwrap_or_else(|| Arc::new([]));
            return Ok(Principal {
                name: name.into(),
                roles,
                method: AuthMethod::Certificate,
            });
        }
        Err(Failure::Missing)
    }
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
                })
                .collect(),
            open_health: true,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn tokens_roles_and_open_paths() {
        let auth = Authenticator::new(&config(&[("ci", "s3cret", &["reader"])]))
            .await
            .unwrap();
        let path = |rpc: &str| format!("{SERVICE_PREFIX}{rpc}");
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), Some(b"Bearer s3cret"), None).await,
            Decision::Allowed(p) if &*p.name == "ci"
        ));
        assert!(matches!(
            auth.decide(&path("DeleteTrail"), Some(b"bearer s3cret"), None).await,
            Decision::Denied { rpc, .. } if rpc == "DeleteTrail"
        ));
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), Some(b"Bearer nope"), None)
                .await,
            Decision::Unauthenticated(Failure::UnknownToken)
        ));
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), Some(b"Basic czNjcmV0"), None)
                .await,
            Decision::Unauthenticated(Failure::Scheme)
        ));
        assert!(matches!(
            auth.decide(&path("DescribeTrails"), None, None).await,
            Decision::Unauthenticated(Failure::Missing)
        ));
        assert!(matches!(
            auth.decide("/grpc.health.v1.Health/Check", None, None)
                .await,
            Decision::Open
        ));
    }

    #[tokio::test]
    async fn without_identities_everything_is_open() {
        let auth = Authenticator::new(&AuthConfig::default()).await.unwrap();
        assert!(matches!(
            auth.decide(&format!("{SERVICE_PREFIX}DeleteTrail"), None, None)
                .await,
            Decision::Open
        ));
    }
}
