//! Who is calling. The auth layer attaches a `Principal` to each request; the API makes the upstream
//! call as that principal (its own SDK client, see `upstream`) and logs say who and how.

use std::sync::Arc;

use crate::target::Scope;

/// Whom the gateway's own calls are made as (with role sessions: its session name).
pub const GATEWAY: &str = "cloudtrail-gateway";
/// The health probe's principal.
pub const HEALTH_PROBE: &str = "gateway-health-probe";
/// Whom the shared StreamEvents feeds queue as for LookupEvents slots.
pub const FEED_QUEUE: &str = "event-streams";
/// A call without a principal (authentication off, or an open path).
pub const ANONYMOUS: &str = "anonymous";

/// Names the gateway uses itself: no caller may be one of them, whatever proves it.
pub const RESERVED: [&str; 4] = [GATEWAY, HEALTH_PROBE, FEED_QUEUE, ANONYMOUS];

pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A token's principal name, a JWT's principal claim, or a certificate's SPIFFE id / CN.
    pub name: Arc<str>,
    /// The name qualified by its source (`token:`, `jwt:<issuer>#`, `certificate:`), which keys
    /// every piece of per-caller state (sessions, idempotency records, fair-queue places, stream
    /// places): a JWT whose `sub` is a token principal's name is another caller.
    pub key: Arc<str>,
    /// Roles granted by configuration or by the JWT's roles claim.
    pub roles: Arc<[String]>,
    /// How the caller proved it.
    pub method: AuthMethod,
    /// Where the principal may call, whatever its roles allow (its `[[tokens]]`/`[[certificates]]`
    /// entry's `accounts` and `regions`; unlimited otherwise).
    pub scope: Arc<Scope>,
}

impl Principal {
    /// `issuer` is the JWT issuer (for `AuthMethod::Jwt`).
    pub fn new(
        name: &str,
        roles: Arc<[String]>,
        method: AuthMethod,
        scope: Arc<Scope>,
        issuer: Option<&str>,
    ) -> Principal {
        let key = match (method, issuer) {
            (AuthMethod::Jwt, Some(issuer)) => format!("jwt:{issuer}#{name}"),
            _ => format!("{}:{name}", method.label()),
        };
        Principal {
            name: name.into(),
            key: key.into(),
            roles,
            method,
            scope,
        }
    }

    /// A token principal with no roles, for tests.
    #[cfg(test)]
    pub fn test(name: &str) -> Principal {
        Principal::new(
            name,
            Arc::new([]),
            AuthMethod::StaticToken,
            Arc::default(),
            None,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    StaticToken,
    Jwt,
    Certificate,
}

impl AuthMethod {
    /// How logs and audit records name it.
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::StaticToken => "token",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Certificate => "certificate",
        }
    }
}
