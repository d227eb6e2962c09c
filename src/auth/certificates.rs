//! mTLS identities. The principal of a verified client certificate is its SPIFFE id: the one URI
//! subject alternative name whose scheme is `spiffe` (compared as RFC 3986 says schemes compare,
//! without regard to case), read as a URI. The subject common name is used only where configured
//! (`certificate_cn_principal`), and never when it is itself shaped like a URI: a CA that signs
//! common names for its customers must not thereby let one claim another's SPIFFE id.

use serde::Deserialize;
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

/// Roles for a certificate identity: `[[certificates]] principal = "spiffe://…", roles = ["operator"]`,
/// and optionally where it may call (`accounts`, `regions`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateEntry {
    pub principal: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Accounts its calls may target (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Regions its calls may target (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
}

/// Why a (CA-verified) client certificate names nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("the client certificate cannot be parsed")]
    Unparsable,
    #[error("the client certificate carries more than one SPIFFE id")]
    SeveralSpiffeIds,
    #[error("the client certificate's SPIFFE id is not a valid SPIFFE id")]
    BadSpiffeId,
    #[error("the client certificate has no SPIFFE id (and common names are not principals here)")]
    Anonymous,
}

impl CertificateProblem {
    pub const ALL: [CertificateProblem; 4] = [
        CertificateProblem::Unparsable,
        CertificateProblem::SeveralSpiffeIds,
        CertificateProblem::BadSpiffeId,
        CertificateProblem::Anonymous,
    ];
}

/// A SPIFFE id in its canonical form (`spiffe://trust-domain/path`, scheme and trust domain in lower
/// case, as the SPIFFE standard writes them), or why `uri` is not one. `None`: not a SPIFFE URI.
fn spiffe_id(uri: &str) -> Option<Result<String, CertificateProblem>> {
    let (scheme, rest) = uri.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("spiffe") {
        return None;
    }
    let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let path_ok = path.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    }) || path.is_empty();
    if !domain_ok || !path_ok || rest.contains(['?', '#', '@']) {
        return Some(Err(CertificateProblem::BadSpiffeId));
    }
    let id = if path.is_empty() {
        format!("spiffe://{}", domain.to_ascii_lowercase())
    } else {
        format!("spiffe://{}/{path}", domain.to_ascii_lowercase())
    };
    Some(Ok(id))
}

/// Whether a name looks like a URI (`scheme:...`): never a principal from a common name.
fn looks_like_uri(name: &str) -> bool {
    name.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    })
}

/// The identity in a DER client certificate. `common_name`: whether a certificate without a SPIFFE
/// id is named by its subject CN.
pub fn identity(der: &[u8], common_name: bool) -> Result<String, CertificateProblem> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertificateProblem::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| CertificateProblem::Unparsable)?;
    let spiffe: Vec<Result<String, CertificateProblem>> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => spiffe_id(uri),
            _ => None,
        })
        .collect();
    match spiffe.as_slice() {
        [one] => one.clone(),
        [_, _, ..] => Err(CertificateProblem::SeveralSpiffeIds),
        [] if common_name => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .filter(|cn| !cn.is_empty() && !looks_like_uri(cn))
            .map(str::to_owned)
            .ok_or(CertificateProblem::Anonymous),
        [] => Err(CertificateProblem::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn cert(cn: Option<&str>, uris: &[&str]) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = cn {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = uris
            .iter()
            .map(|u| SanType::URI((*u).try_into().unwrap()))
            .collect();
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn spiffe_id_wins_over_common_name() {
        let der = cert(
            Some("svc"),
            &["spiffe://example.org/ns/a/sa/b", "https://example.org"],
        );
        assert_eq!(
            identity(&der, true).unwrap(),
            "spiffe://example.org/ns/a/sa/b"
        );
        assert_eq!(identity(&cert(Some("svc"), &[]), true).unwrap(), "svc");
    }

    #[test]
    fn ambiguous_or_anonymous_certificates_name_nobody() {
        let two = cert(Some("svc"), &["spiffe://a/x", "spiffe://a/y"]);
        assert_eq!(
            identity(&two, true),
            Err(CertificateProblem::SeveralSpiffeIds)
        );
        assert_eq!(
            identity(&cert(None, &[]), true),
            Err(CertificateProblem::Anonymous)
        );
        assert_eq!(
            identity(b"not a certificate", true),
            Err(CertificateProblem::Unparsable)
        );
    }

    /// The attack: a certificate whose CN is the admin's SPIFFE id, no URI SAN.
    #[test]
    fn a_common_name_never_claims_a_spiffe_id() {
        let forged = cert(Some("spiffe://example.org/ns/platform/sa/admin"), &[]);
        assert_eq!(identity(&forged, true), Err(CertificateProblem::Anonymous));
        assert_eq!(identity(&forged, false), Err(CertificateProblem::Anonymous));
        let also_forged = cert(Some("SPIFFE://example.org/admin"), &[]);
        assert_eq!(
            identity(&also_forged, true),
            Err(CertificateProblem::Anonymous)
        );
        // Without the setting, a plain CN names nobody either.
        assert_eq!(
            identity(&cert(Some("svc"), &[]), false),
            Err(CertificateProblem::Anonymous)
        );
    }

    /// The other half: an upper-case scheme in the SAN is still the SPIFFE id, not skipped in favour
    /// of the CN.
    #[test]
    fn the_spiffe_scheme_is_matched_without_regard_to_case() {
        let der = cert(Some("admin"), &["SPIFFE://Example.ORG/ns/a/sa/b"]);
        assert_eq!(
            identity(&der, true).unwrap(),
            "spiffe://example.org/ns/a/sa/b"
        );
        let bad = cert(Some("admin"), &["spiffe://example.org/ns/../admin"]);
        assert_eq!(identity(&bad, true), Err(CertificateProblem::BadSpiffeId));
    }
}
