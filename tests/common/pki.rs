//! A throwaway certificate authority for TLS and mTLS tests: keys and certificates are made here,
//! none are checked in.

use std::path::{Path, PathBuf};

use cloudtrail_gateway::auth::{ClientCertificates, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// A fresh directory under the system's temp dir for this test process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ctgw-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA cert");
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for localhost, its key and this CA written to `dir`: the gateway's TLS
    /// settings, client certificates checked against this CA.
    pub fn server_tls(&self, dir: &Path, client_certificates: ClientCertificates) -> TlsConfig {
        let (cert, key) = self.leaf("gateway", &["localhost"], &[]);
        for (name, pem) in [
            ("server.pem", &cert),
            ("server.key", &key),
            ("ca.pem", &self.ca_pem),
        ] {
            std::fs::write(dir.join(name), pem).expect("write");
        }
        TlsConfig {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: Some(dir.join("ca.pem")),
            client_certificates,
        }
    }

    /// A leaf certificate and its key (PEM), with a common name and optional URI SANs.
    pub fn leaf(&self, cn: &str, dns: &[&str], uris: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names.extend(
            uris.iter()
                .map(|u| SanType::URI((*u).try_into().expect("URI"))),
        );
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }
}
