//! An identity provider for the JWT tests: signing keys, their JWKS (in a file or served over HTTP
//! by an endpoint that can be told to hang or refuse), and tokens' claims.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use rcgen::KeyPair;

pub const ISSUER: &str = "https://idp.example.test";
pub const AUDIENCE: &str = "cloudtrail-gateway";

/// A key tokens are signed with, and its JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl SigningKey {
    pub fn generate(kid: &str, alg: Algorithm) -> SigningKey {
        let (key, encoding) = match alg {
            Algorithm::RS256 => {
                let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
                let pem = key.serialize_pem();
                (
                    key,
                    EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
                )
            }
            Algorithm::ES256 => {
                let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
                let pem = key.serialize_pem();
                (
                    key,
                    EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC PEM"),
                )
            }
            other => panic!("no test key for {other:?}"),
        };
        drop(key);
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("JWK");
        jwk.common.key_id = Some(kid.into());
        SigningKey {
            kid: kid.into(),
            alg,
            encoding,
            jwk,
        }
    }

    pub fn sign(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign")
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The claims of a token for `sub` with `roles`, valid for ten minutes.
pub fn claims(sub: &str, roles: &[&str]) -> serde_json::Value {
    serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles, "iat": now(), "exp": now() + 600})
}

pub fn write_jwks(path: &Path, keys: &[&SigningKey]) {
    let set = JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    };
    std::fs::write(path, serde_json::to_vec(&set).expect("JWKS JSON")).expect("write JWKS");
}

/// A JWKS endpoint answering as told: serve the set, hang, or refuse; it counts the requests.
pub struct JwksServer {
    pub url: String,
    pub mode: Arc<AtomicU8>,
    pub fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

pub const SERVE: u8 = 0;
pub const HANG: u8 = 1;
pub const REFUSE: u8 = 2;

impl JwksServer {
    pub async fn start(keys: &[&SigningKey], mode: u8) -> JwksServer {
        let body = serde_json::to_string(&JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        })
        .expect("JSON");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(mode));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (m, f) = (mode.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (m, f, body) = (m.clone(), f.clone(), body.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    f.fetch_add(1, Ordering::SeqCst);
                    match m.load(Ordering::SeqCst) {
                        SERVE => {
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = socket.write_all(response.as_bytes()).await;
                        }
                        HANG => tokio::time::sleep(Duration::from_secs(3600)).await,
                        _ => {} // closes without an answer
                    }
                });
            }
        });
        JwksServer {
            url: format!("http://127.0.0.1:{port}/jwks.json"),
            mode,
            fetches,
            task,
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
