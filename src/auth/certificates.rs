//! mTLS identities: the principal of a verified client certificate is its SPIFFE id (the one
//! `spiffe://` URI SAN) or, without one, its subject common name.

use serde::Deserialize;
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

/// Roles for a certificate identity: `[[certificates]] principal = "spiffe://…", roles = ["operator"]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateEntry {
    pub principal: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Why a (CA-verified) client certificate names nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("the client certificate cannot be parsed")]
    Unparsable,
    #[error("the client certificate carries more than one SPIFFE id")]
    SeveralSpiffeIds,
    #[error("the client certificate has neither a SPIFFE id nor a common name")]
    Anonymous,
}

/// The identity in a DER client certificate.
pub fn identity(der: &[u8]) -> Result<String, CertificateProblem> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertificateProblem::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| CertificateProblem::Unparsable)?;
    let spiffe: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
            _ => None,
        })
        .collect();
    match spiffe.as_slice() {
        [one] => Ok((*one).to_owned()),
        [_, _, ..] => Err(CertificateProblem::SeveralSpiffeIds),
        [] => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .ok_or(CertificateProblem::Anonymous),
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
        assert_eq!(identity(&der).unwrap(), "spiffe://example.org/ns/a/sa/b");
        assert_eq!(identity(&cert(Some("svc"), &[])).unwrap(), "svc");
    }

    #[test]
    fn ambiguous_or_anonymous_certificates_name_nobody() {
        let two = cert(Some("svc"), &["spiffe://a/x", "spiffe://a/y"]);
        assert_eq!(identity(&two), Err(CertificateProblem::SeveralSpiffeIds));
        assert_eq!(
            identity(&cert(None, &[])),
            Err(CertificateProblem::Anonymous)
        );
        assert_eq!(
            identity(b"not a certificate"),
            Err(CertificateProblem::Unparsable)
        );
    }
}
