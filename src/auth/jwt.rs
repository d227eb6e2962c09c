//! JWT bearer tokens checked against a JWKS (a file or an URL): signature, `iss`, `aud`, `exp`/`nbf`
//! with a small leeway; RSA (RS*/PS*) and ECDSA (ES256/ES384) keys. Keys are looked up by `kid`; an
//! unknown `kid` triggers a refresh (at most one per `min_refresh_interval`), and a timer refreshes
//! the set every `refresh_interval`. Symmetric (HS*) and `none` algorithms are never accepted.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{JwkSet, KeyAlgorithm},
};
use serde_json::Value;

const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// A JWKS is small; refuse anything larger than this.
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// `typ`, when present, must say the token is an access token or a plain JWT (not a DPoP proof, a
/// logout token, an ID token of another kind...), and `crit` must be absent: this verifier
/// understands no header extensions, and RFC 7515 (4.1.11) says a token naming one it does not
/// understand is refused.
fn check_typ_and_crit(token: &str) -> Result<(), JwtProblem> {
    use base64::Engine;
    let header = token.split('.').next().ok_or(JwtProblem::Malformed)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtProblem::Malformed)?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&raw).map_err(|_| JwtProblem::Malformed)?;
    if header.contains_key("crit") {
        return Err(JwtProblem::Header);
    }
    match header.get("typ") {
        None => Ok(()),
        Some(Value::String(typ))
            if ["JWT", "at+jwt", "application/at+jwt"]
                .iter()
                .any(|ok| typ.eq_ignore_ascii_case(ok)) =>
        {
            Ok(())
        }
        Some(_) => Err(JwtProblem::Header),
    }
}

/// A token checked against the keys held now.
#[derive(Debug)]
pub enum Checked {
    Done(Result<(String, Vec<String>), JwtProblem>),
    /// Signed with a key id the set does not hold (yet): a refresh may find it.
    KeyNotHeld,
}

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub jwks: JwksSource,
    pub issuer: String,
    pub audience: String,
    pub principal_claim: String,
    pub roles_claim: String,
    pub leeway: Duration,
    pub refresh_interval: Duration,
    pub min_refresh_interval: Duration,
    /// Refuse to start when the key set cannot be loaded (else: start not ready, keep fetching).
    pub required_at_start: bool,
}

/// Why a JWT was refused (also the `error_description` callers see: nothing an attacker can use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtProblem {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong audience")]
    Audience,
    #[error("wrong issuer")]
    Issuer,
    #[error("token names no principal")]
    NoPrincipal,
    #[error("unsupported token type or critical header")]
    Header,
}

impl JwtProblem {
    pub const ALL: [JwtProblem; 10] = [
        JwtProblem::Malformed,
        JwtProblem::Algorithm,
        JwtProblem::UnknownKey,
        JwtProblem::Signature,
        JwtProblem::Expired,
        JwtProblem::NotYetValid,
        JwtProblem::Audience,
        JwtProblem::Issuer,
        JwtProblem::NoPrincipal,
        JwtProblem::Header,
    ];

    /// A short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            JwtProblem::Malformed => "jwt_malformed",
            JwtProblem::Algorithm => "jwt_algorithm",
            JwtProblem::UnknownKey => "jwt_unknown_kid",
            JwtProblem::Signature => "jwt_signature",
            JwtProblem::Expired => "jwt_expired",
            JwtProblem::NotYetValid => "jwt_not_yet_valid",
            JwtProblem::Audience => "jwt_audience",
            JwtProblem::Issuer => "jwt_issuer",
            JwtProblem::NoPrincipal => "jwt_no_principal",
            JwtProblem::Header => "jwt_header",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read JWKS file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot fetch JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("JWKS from {from}: {reason}")]
    Parse { from: String, reason: String },
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

pub(crate) struct Key {
    key: DecodingKey,
    /// The algorithm the JWK pins, if it does.
    algorithm: Option<Algorithm>,
}

/// When the set was last fetched, and how the last fetches went.
#[derive(Debug, Clone, Copy)]
struct Fetches {
    /// The last attempt, failed or not: attempts are what the endpoint sees.
    last: Option<Instant>,
    /// Failures in a row since the last success.
    failures: u32,
}

pub struct JwtVerifier {
    config: JwtConfig,
    keys: RwLock<Arc<HashMap<String, Key>>>,
    /// Serialises fetches: callers with an unknown `kid` wait for the fetch in flight (one fetch
    /// however many wait) instead of each making their own.
    fetches: tokio::sync::Mutex<Fetches>,
    /// Whether a key set was ever loaded (the gateway is not ready before).
    loaded: tokio::sync::watch::Sender<bool>,
    http: Option<HttpsClient>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("jwks", &self.config.jwks)
            .finish_non_exhaustive()
    }
}

fn pinned_algorithm(alg: Option<KeyAlgorithm>) -> Option<Algorithm> {
    Some(match alg? {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        _ => return None,
    })
}

/// A JSON Web Key Set's usable keys by `kid` (keys without a `kid`, or of a kind that cannot verify
/// an accepted algorithm, are left out).
pub(crate) fn parse_key_set(raw: &[u8]) -> Result<HashMap<String, Key>, String> {
    let set: JwkSet =
        serde_json::from_slice(raw).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((
                kid,
                Key {
                    key,
                    algorithm: pinned_algorithm(jwk.common.key_algorithm),
                },
            ))
        })
        .collect())
}

impl JwtVerifier {
    /// A verifier for `config`. The key set is loaded now; when that fails, `required` makes it an
    /// error, else the verifier starts without keys (the gateway not ready) and the refresher keeps
    /// trying (`spawn_refresher`).
    pub async fn new(config: JwtConfig, required: bool) -> Result<Arc<JwtVerifier>, JwksError> {
        let http = match &config.jwks {
            JwksSource::File(_) => None,
            JwksSource::Url(url) => {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| JwksError::Fetch {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Some(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(connector),
                )
            }
        };
        let verifier = Arc::new(JwtVerifier {
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetches: tokio::sync::Mutex::new(Fetches {
                last: None,
                failures: 0,
            }),
            loaded: tokio::sync::watch::Sender::new(false),
            http,
            config,
        });
        match verifier.refresh().await {
            Ok(_) => {}
            Err(e) if required => return Err(e),
            Err(e) => tracing::warn!(
                "no JWKS yet, starting not ready and fetching again in the background: {e}"
            ),
        }
        Ok(verifier)
    }

    /// Whether a key set has been loaded.
    /// The issuer its tokens must name (qualifies their principals).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn is_loaded(&self) -> bool {
        *self.loaded.borrow()
    }

    /// Resolves once a key set has been loaded.
    pub async fn wait_loaded(&self) {
        let mut loaded = self.loaded.subscribe();
        let _ = loaded.wait_for(|l| *l).await;
    }

    async fn fetch(&self) -> Result<Vec<u8>, JwksError> {
        match (&self.config.jwks, &self.http) {
            (JwksSource::File(path), _) => {
                tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::Read {
                        path: path.clone(),
                        source,
                    })
            }
            (JwksSource::Url(url), Some(client)) => {
                let failed = |reason: String| JwksError::Fetch {
                    url: url.clone(),
                    reason,
                };
                let uri: http::Uri = url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| failed(e.to_string()))?;
                let response = tokio::time::timeout(FETCH_TIMEOUT, client.get(uri))
                    .await
                    .map_err(|_| failed("timed out".into()))?
                    .map_err(|e| failed(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(failed(format!("HTTP {}", response.status())));
                }
                let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                    .collect()
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                Ok(body.to_bytes().to_vec())
            }
            (JwksSource::Url(url), None) => Err(JwksError::Fetch {
                url: url.clone(),
                reason: "no HTTP client".into(),
            }),
        }
    }

    /// Fetches the key set and replaces the current one. Returns how many usable keys it holds.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let mut fetches = self.fetches.lock().await;
        self.fetch_holding(&mut fetches).await
    }

    /// Fetches while holding the `fetches` lock, so fetches never overlap; every attempt counts.
    async fn fetch_holding(&self, fetches: &mut Fetches) -> Result<usize, JwksError> {
        let fetched = self.fetch().await;
        // When it ended, not when it began: a fetch that hung for its whole timeout is recent.
        fetches.last = Some(Instant::now());
        let parsed = match fetched {
            Ok(raw) => parse_key_set(&raw).map_err(|reason| JwksError::Parse {
                from: match &self.config.jwks {
                    JwksSource::File(p) => p.display().to_string(),
                    JwksSource::Url(u) => u.clone(),
                },
                reason,
            }),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(keys) => {
                fetches.failures = 0;
                let count = keys.len();
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                self.loaded.send_replace(true);
                Ok(count)
            }
            Err(e) => {
                fetches.failures = fetches.failures.saturating_add(1);
                Err(e)
            }
        }
    }

    /// How long after the last attempt another may be made for an unknown `kid`: the minimum
    /// interval, doubled for each failure in a row (an endpoint that is down is not asked again and
    /// again), at most the periodic interval.
    fn unknown_kid_wait(&self, fetches: &Fetches) -> Duration {
        let doubled = self
            .config
            .min_refresh_interval
            .saturating_mul(1 << fetches.failures.min(16));
        doubled.min(
            self.config
                .refresh_interval
                .max(self.config.min_refresh_interval),
        )
    }

    /// Refreshes on an unknown `kid`, unless the last attempt is too recent (`unknown_kid_wait`).
    /// Waits for a fetch already in flight instead of making another. The fetch runs on its own
    /// task: a caller that gives up (its deadline) does not cancel it, so the callers after it find
    /// it done instead of each starting their own.
    async fn refresh_for_unknown_kid(self: &Arc<Self>) {
        let this = self.clone();
        let fetch = tokio::spawn(async move {
            let mut fetches = this.fetches.lock().await;
            let due = fetches
                .last
                .is_none_or(|last| last.elapsed() >= this.unknown_kid_wait(&fetches));
            if due && let Err(e) = this.fetch_holding(&mut fetches).await {
                tracing::warn!("JWKS refresh for an unknown key id failed: {e}");
            }
        });
        let _ = fetch.await;
    }

    /// Refreshes the set every `refresh_interval` while the returned task runs; until a set was
    /// loaded, tries every few seconds (backing off to the interval).
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let verifier = Arc::downgrade(self);
        let every = self.config.refresh_interval;
        tokio::spawn(async move {
            let mut retry = Duration::from_secs(1);
            loop {
                let Some(v) = verifier.upgrade() else { return };
                let wait = if v.is_loaded() {
                    every
                } else {
                    retry.min(every)
                };
                drop(v);
                tokio::time::sleep(wait).await;
                let Some(v) = verifier.upgrade() else { return };
                match v.refresh().await {
                    Ok(_) => retry = Duration::from_secs(1),
                    Err(e) if v.is_loaded() => {
                        tracing::warn!(
                            "periodic JWKS refresh failed, keeping the previous keys: {e}"
                        )
                    }
                    Err(e) => {
                        retry = retry.saturating_mul(2);
                        tracing::warn!("JWKS still not loaded, not ready: {e}");
                    }
                }
            }
        })
    }

    fn current_keys(&self) -> Arc<HashMap<String, Key>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Checks a token; returns the principal and its roles. An unknown key id refreshes the key set
    /// first (at most once per `min_refresh_interval`).
    pub async fn verify(
        self: &Arc<Self>,
        token: &str,
    ) -> Result<(String, Vec<String>), JwtProblem> {
        match self.verify_with_current_keys(token) {
            Checked::KeyNotHeld => {
                self.refresh_for_unknown_kid().await;
                match self.verify_with_current_keys(token) {
                    Checked::Done(verified) => verified,
                    Checked::KeyNotHeld => Err(JwtProblem::UnknownKey),
                }
            }
            Checked::Done(verified) => verified,
        }
    }

    /// Checks a token against the keys held now, without waiting for anything.
    pub fn verify_with_current_keys(&self, token: &str) -> Checked {
        let keys = self.current_keys();
        let key = match Self::key_for(&keys, token) {
            Ok(Some(key)) => key,
            Ok(None) => return Checked::KeyNotHeld,
            Err(problem) => return Checked::Done(Err(problem)),
        };
        Checked::Done(self.check_claims(token, key))
    }

    /// The key that signed `token`: `None` when its `kid` is not among `keys`.
    fn key_for<'k>(
        keys: &'k HashMap<String, Key>,
        token: &str,
    ) -> Result<Option<(&'k Key, Algorithm)>, JwtProblem> {
        // `alg: none` and unknown algorithms fail here: jsonwebtoken has no such Algorithm.
        let header = decode_header(token).map_err(|_| JwtProblem::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(JwtProblem::Algorithm);
        }
        check_typ_and_crit(token)?;
        let kid = header.kid.ok_or(JwtProblem::UnknownKey)?;
        Ok(keys.get(&kid).map(|key| (key, header.alg)))
    }

    fn check_claims(
        &self,
        token: &str,
        (key, alg): (&Key, Algorithm),
    ) -> Result<(String, Vec<String>), JwtProblem> {
        if key.algorithm.is_some_and(|pinned| pinned != alg) {
            return Err(JwtProblem::Algorithm);
        }
        let mut validation = Validation::new(alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Value>(token, &key.key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => JwtProblem::Expired,
            ErrorKind::ImmatureSignature => JwtProblem::NotYetValid,
            ErrorKind::InvalidAudience => JwtProblem::Audience,
            ErrorKind::InvalidIssuer => JwtProblem::Issuer,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => JwtProblem::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => JwtProblem::Issuer,
            ErrorKind::MissingRequiredClaim(_) => JwtProblem::Malformed,
            ErrorKind::InvalidSignature => JwtProblem::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtProblem::Algorithm,
            _ => JwtProblem::Malformed,
        })?;
        let claims = data.claims;
        let principal = claims
            .get(&self.config.principal_claim)
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or(JwtProblem::NoPrincipal)?
            .to_owned();
        // Roles: a JSON array of strings, or one space-separated string (OAuth `scope` style).
        let roles = match claims.get(&self.config.roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Ok((principal, roles))
    }
}
