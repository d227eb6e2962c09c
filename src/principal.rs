//! Who is calling. The auth layer attaches a `Principal` to each request; the API makes the upstream
//! call as that principal (its own SDK client, see `upstream`) and logs say who and how.

use std::sync::Arc;

use crate::auth::policy::Scope;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A token's principal name, a JWT's principal claim, or a certificate's SPIFFE id / CN.
    pub name: Arc<str>,
    /// Roles granted by configuration or by the JWT's roles claim.
    pub roles: Arc<[String]>,
    /// How the caller proved it.
    pub method: AuthMethod,
    /// Where the principal may call, whatever its roles allow (its `[[tokens]]`/`[[certificates]]`
    /// entry's `accounts` and `regions`; unlimited otherwise).
    pub scope: Arc<Scope>,
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
