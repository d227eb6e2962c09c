//! Who may call: TLS and client certificates, static tokens, JWTs, roles.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::{ArgAction, Args};

use super::{
    checks::{self, ConfigError, account_id, invalid, positive, readable, url},
    duration::HumanDuration,
};
use crate::auth::{
    AuthConfig, ClientCertificates, TlsConfig,
    certificates::CertificateEntry,
    jwt::{JwksSource, JwtConfig},
    policy::{Policy, RoleEntry},
    tokens::{TokenEntry, Tokens},
};

#[derive(Debug, Args)]
pub struct AuthSettings {
    /// Serve without authentication on a non-loopback address (warned about at every start).
    #[arg(long, action = ArgAction::SetTrue)]
    pub insecure_no_auth: bool,
    /// Health and reflection reachable without credentials.
    #[arg(long, value_name = "BOOL", default_value = "true", action = ArgAction::Set)]
    pub auth_open_health: bool,
    /// Server certificate chain (PEM): serve TLS.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to (mTLS).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: whether every connection must present a client certificate, or only
    /// those that present one are checked (token and JWT callers, health probes connect without).
    #[arg(long, value_enum, default_value = "optional")]
    pub tls_client_certificates: ClientCertificates,
    /// A client certificate without a SPIFFE id is named by its subject CN (never a CN shaped like a
    /// URI); off: such a certificate names nobody.
    #[arg(long, value_name = "BOOL", default_value = "false", action = ArgAction::Set)]
    pub certificate_cn_principal: bool,
    /// JWT: the JSON Web Key Set, from a file.
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// JWT: the JSON Web Key Set, from an https URL (http only on loopback).
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub jwks_url: Option<String>,
    /// JWT: the required `iss`.
    #[arg(long, value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// JWT: the required `aud`.
    #[arg(long, value_name = "AUD")]
    pub jwt_audience: Option<String>,
    /// JWT: the claim naming the principal.
    #[arg(long, value_name = "CLAIM", default_value = "sub")]
    pub jwt_principal_claim: String,
    /// JWT: the claim listing roles (array, or space-separated string).
    #[arg(long, value_name = "CLAIM", default_value = "roles")]
    pub jwt_roles_claim: String,
    /// JWT: clock leeway for exp/nbf.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub jwt_leeway: HumanDuration,
    /// JWT: refresh the key set this often.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub jwks_refresh_interval: HumanDuration,
    /// JWT: an unknown key id refreshes the set at most this often (less often while fetches fail).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub jwks_min_refresh_interval: HumanDuration,
    /// JWT: refuse to start when the key set cannot be loaded; off: start not ready (/readyz 503,
    /// health NOT_SERVING) and keep fetching, ready once keys are loaded.
    #[arg(long, value_name = "BOOL", default_value = "false", action = ArgAction::Set)]
    pub jwks_required_at_start: bool,
}

impl AuthSettings {
    /// Checks the settings and the file's tables as start-up would: the files named are read, token
    /// hashes and role names are checked.
    pub fn check(
        self,
        listen: &SocketAddr,
        tokens: Vec<TokenEntry>,
        certificates: Vec<CertificateEntry>,
        roles: BTreeMap<String, RoleEntry>,
    ) -> Result<AuthConfig, ConfigError> {
        let tls = match (self.tls_cert, self.tls_key, self.tls_client_ca) {
            (Some(cert), Some(key), client_ca) => {
                readable("tls_cert", &cert)?;
                readable("tls_key", &key)?;
                if let Some(ca) = &client_ca {
                    readable("tls_client_ca", ca)?;
                }
                Some(TlsConfig {
                    cert,
                    key,
                    client_ca,
                    client_certificates: self.tls_client_certificates,
                })
            }
            (None, None, None) => None,
            (Some(_), None, _) => return Err(invalid("tls_key", "tls_cert needs tls_key")),
            (None, Some(_), _) => return Err(invalid("tls_cert", "tls_key needs tls_cert")),
            (None, None, Some(_)) => {
                return Err(invalid(
                    "tls_client_ca",
                    "client certificates need tls_cert and tls_key",
                ));
            }
        };
        let jwks = match (self.jwks_file, self.jwks_url) {
            (Some(_), Some(_)) => {
                return Err(invalid("jwks_url", "give jwks_file or jwks_url, not both"));
            }
            (Some(file), None) => {
                let raw = readable("jwks_file", &file)?;
                crate::auth::jwt::parse_key_set(&raw)
                    .map_err(|reason| invalid("jwks_file", reason))?;
                Some(JwksSource::File(file))
            }
            (None, Some(jwks_url)) => {
                check_jwks_url(&jwks_url)?;
                Some(JwksSource::Url(jwks_url))
            }
            (None, None) => None,
        };
        let jwt = match jwks {
            None if self.jwt_issuer.is_some() || self.jwt_audience.is_some() => {
                return Err(invalid(
                    "jwks_file",
                    "JWT settings given but no jwks_file or jwks_url",
                ));
            }
            None => None,
            Some(jwks) => Some(JwtConfig {
                jwks,
                issuer: self
                    .jwt_issuer
                    .ok_or_else(|| invalid("jwt_issuer", "required with a JWKS"))?,
                audience: self
                    .jwt_audience
                    .ok_or_else(|| invalid("jwt_audience", "required with a JWKS"))?,
                principal_claim: self.jwt_principal_claim,
                roles_claim: self.jwt_roles_claim,
                leeway: self.jwt_leeway.0,
                refresh_interval: positive("jwks_refresh_interval", self.jwks_refresh_interval.0)?,
                min_refresh_interval: positive(
                    "jwks_min_refresh_interval",
                    self.jwks_min_refresh_interval.0,
                )?,
                required_at_start: self.jwks_required_at_start,
            }),
        };
        // What start-up would refuse, refused here (so --print-config says so too).
        Tokens::new(&tokens).map_err(|e| {
            invalid(
                format!("tokens[{}].sha256", e.index),
                "expected 64 hex digits (the SHA-256 of the token)",
            )
        })?;
        let policy =
            Policy::new(&roles).map_err(|e| invalid(format!("roles.{}", e.role), e.reason()))?;
        let named = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("tokens[{i}].principal"), &t.principal))
            .chain(
                certificates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("certificates[{i}].principal"), &c.principal)),
            );
        for (key, name) in named {
            if crate::principal::is_reserved(name) {
                return Err(invalid(
                    key,
                    format!(
                        "'{name}' is a name the gateway uses itself (reserved: {})",
                        crate::principal::RESERVED.join(", ")
                    ),
                ));
            }
        }
        let scopes = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    format!("tokens[{i}]"),
                    t.accounts.clone(),
                    t.regions.clone(),
                )
            })
            .chain(certificates.iter().enumerate().map(|(i, c)| {
                (
                    format!("certificates[{i}]"),
                    c.accounts.clone(),
                    c.regions.clone(),
                )
            }))
            .chain(roles.iter().map(|(name, role)| {
                let scope = role.scope();
                (format!("roles.{name}"), scope.accounts, scope.regions)
            }));
        for (key, accounts, regions) in scopes {
            for account in &accounts {
                account_id(&format!("{key}.accounts"), account)?;
            }
            for region in &regions {
                checks::region(&format!("{key}.regions"), region)?;
            }
        }
        let granted = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("tokens[{i}].roles"), &t.roles))
            .chain(
                certificates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("certificates[{i}].roles"), &c.roles)),
            );
        for (key, names) in granted {
            if let Some(unknown) = names.iter().find(|r| !policy.has_role(r)) {
                return Err(invalid(
                    key,
                    format!(
                        "unknown role '{unknown}' (known: {})",
                        policy.role_names().join(", ")
                    ),
                ));
            }
        }
        let auth = AuthConfig {
            tokens,
            certificates,
            roles,
            jwt,
            tls,
            open_health: self.auth_open_health,
            insecure_no_auth: self.insecure_no_auth,
            certificate_cn_principal: self.certificate_cn_principal,
        };
        // Secure by default: no authentication only where nobody else can connect.
        if !auth.is_enabled() && !listen.ip().is_loopback() && !auth.insecure_no_auth {
            return Err(invalid(
                "insecure_no_auth",
                format!(
                    "listening on {listen} without authentication; configure tokens, a JWKS or client certificates, or pass --insecure-no-auth"
                ),
            ));
        }
        Ok(auth)
    }
}

/// https, or http to a loopback host (the host as an URL parser reads it, user info and all).
fn check_jwks_url(value: &str) -> Result<(), ConfigError> {
    url("jwks_url", value, &["http", "https"])?;
    let uri: http::Uri = value
        .parse()
        .map_err(|e| invalid("jwks_url", format!("'{value}' is not a URL: {e}")))?;
    if uri.scheme_str() == Some("https") {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(invalid(
            "jwks_url",
            "must be https:// (http:// only on loopback)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_urls_are_judged_by_their_real_host() {
        for ok in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:80/jwks",
        ] {
            assert!(check_jwks_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://127.0.0.1:1@idp.example.com/jwks",
            "http://127.0.0.1.example.com/jwks",
            "http://localhost.example.com/jwks",
        ] {
            assert!(check_jwks_url(bad).is_err(), "{bad}");
        }
    }
}
