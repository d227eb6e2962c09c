//! One typed configuration: command-line flags, `CLOUDTRAIL_GATEWAY_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence, checked once at start.
//!
//! Every setting has the same name everywhere: flag `--max-attempts`, env
//! `CLOUDTRAIL_GATEWAY_MAX_ATTEMPTS`, TOML key `max_attempts`.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{ArgAction, Parser, ValueEnum};
use serde::Deserialize;

use crate::{
    auth::{
        AuthConfig, TlsConfig,
        certificates::CertificateEntry,
        jwt::{JwksSource, JwtConfig},
        tokens::TokenEntry,
    },
    limits::{Fairness, LimitsConfig, Quotas},
    local::LocalOptions,
    telemetry::LogFormat,
};

/// Where CloudTrail calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// The embedded CloudTrail, in process: no AWS account needed.
    Local,
    /// AWS CloudTrail, or any CloudTrail-compatible endpoint given with --endpoint-url.
    Aws,
}

/// The SDK's retry strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryMode {
    Standard,
    Adaptive,
}

/// A duration written as `250ms`, `3s`, `2m` or plain seconds (`3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("'{s}' is not a duration (e.g. 250ms, 3s, 2m)"))?;
        let seconds = match unit {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" => value * 60.0,
            _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s or m)")),
        };
        Duration::try_from_secs_f64(seconds)
            .map(HumanDuration)
            .map_err(|_| format!("'{s}' is out of range"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The settings as given; unset ones fall back to the file, then to the defaults.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(
    name = "cloudtrail-gateway",
    version,
    about = "A gRPC gateway to AWS CloudTrail"
)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (keys as the flags, with underscores).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where CloudTrail calls go [default: local].
    #[arg(long, value_enum, env = "CLOUDTRAIL_GATEWAY_UPSTREAM")]
    pub upstream: Option<UpstreamKind>,
    /// AWS Region [default: local: us-east-1; aws: from the AWS config chain].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_REGION")]
    pub region: Option<String>,
    /// With --upstream aws: a CloudTrail-compatible endpoint instead of AWS's (e.g. moto).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// SDK retry mode [default: standard].
    #[arg(long, value_enum, env = "CLOUDTRAIL_GATEWAY_RETRY_MODE")]
    pub retry_mode: Option<RetryMode>,
    /// SDK attempts per call, first one included [default: 3].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Time to connect to the upstream [default: 3s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<HumanDuration>,
    /// Time for one call including retries; a caller's shorter gRPC deadline wins [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_OPERATION_TIMEOUT")]
    pub operation_timeout: Option<HumanDuration>,
    /// Embedded CloudTrail: the account id [default: 123456789012].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOCAL_ACCOUNT_ID")]
    pub local_account_id: Option<String>,
    /// Embedded CloudTrail: CloudTrail log files or directories to load at start (repeatable;
    /// comma-separated in the env var).
    #[arg(
        long,
        env = "CLOUDTRAIL_GATEWAY_LOCAL_LOAD_LOGS",
        value_delimiter = ','
    )]
    pub local_load_logs: Vec<PathBuf>,
    /// Embedded CloudTrail: events kept per Region, oldest dropped first (~1.8 KB each) [default: 100000].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOCAL_EVENT_CAPACITY")]
    pub local_event_capacity: Option<usize>,

    /// Serve without authentication on a non-loopback address (warned about at every start).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_INSECURE_NO_AUTH", action = ArgAction::SetTrue)]
    pub insecure_no_auth: bool,
    /// Health and reflection reachable without credentials [default: true].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_AUTH_OPEN_HEALTH")]
    pub auth_open_health: Option<bool>,
    /// Server certificate chain (PEM): serve TLS.
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to; makes client certificates required (mTLS).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// JWT: the JSON Web Key Set, from a file.
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// JWT: the JSON Web Key Set, from an https URL (http only on loopback).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// JWT: the required `iss`.
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// JWT: the required `aud`.
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// JWT: the claim naming the principal [default: sub].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWT_PRINCIPAL_CLAIM")]
    pub jwt_principal_claim: Option<String>,
    /// JWT: the claim listing roles (array, or space-separated string) [default: roles].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWT_ROLES_CLAIM")]
    pub jwt_roles_claim: Option<String>,
    /// JWT: clock leeway for exp/nbf [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWT_LEEWAY")]
    pub jwt_leeway: Option<HumanDuration>,
    /// JWT: refresh the key set this often [default: 10m].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWKS_REFRESH_INTERVAL")]
    pub jwks_refresh_interval: Option<HumanDuration>,
    /// JWT: an unknown key id refreshes the set at most this often [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_JWKS_MIN_REFRESH_INTERVAL")]
    pub jwks_min_refresh_interval: Option<HumanDuration>,

    /// With --upstream aws: the account the quotas belong to [default: asked of STS at start].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// LookupEvents calls per second per account and Region [default: 1].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOOKUP_RATE")]
    pub lookup_rate: Option<f64>,
    /// Describe/Get/List calls per second [default: 10].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_READ_RATE")]
    pub read_rate: Option<f64>,
    /// Other calls per second [default: 1].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_WRITE_RATE")]
    pub write_rate: Option<f64>,
    /// The longest a call waits for its slot, whatever its deadline [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LIMIT_MAX_WAIT")]
    pub limit_max_wait: Option<HumanDuration>,
    /// How waiting callers share slots [default: round-robin].
    #[arg(long, value_enum, env = "CLOUDTRAIL_GATEWAY_FAIRNESS")]
    pub fairness: Option<Fairness>,
    /// Share the quotas with other replicas through Redis (redis://host:port).
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Replicas sharing the quota; with Redis away each takes quota / this [default: 1].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_EXPECTED_REPLICAS")]
    pub expected_replicas: Option<u32>,
    /// Identical LookupEvents requests within this time are answered from cache; 0s: off [default: 2s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOOKUP_CACHE_TTL")]
    pub lookup_cache_ttl: Option<HumanDuration>,
    /// Embedded CloudTrail: its LookupEvents quota per second, as AWS enforces it [default: 2].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOCAL_LOOKUP_QUOTA")]
    pub local_lookup_quota: Option<f64>,
    /// Embedded CloudTrail: its read quota per second [default: 10].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOCAL_READ_QUOTA")]
    pub local_read_quota: Option<f64>,
    /// Embedded CloudTrail: its write quota per second [default: 1].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOCAL_WRITE_QUOTA")]
    pub local_write_quota: Option<f64>,

    /// Metrics and probes over plain HTTP (/metrics, /healthz, /readyz) [default: 127.0.0.1:9090].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log lines as human text or JSON [default: human].
    #[arg(long, value_enum, env = "CLOUDTRAIL_GATEWAY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Export trace spans over OTLP/gRPC to this collector (e.g. http://otel-collector:4317) [default: off].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// How often the upstream is probed for health [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_HEALTH_PROBE_INTERVAL")]
    pub health_probe_interval: Option<HumanDuration>,
    /// On SIGTERM/SIGINT, how long calls in flight may still finish [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<HumanDuration>,
    /// Calls in the gateway at once; beyond, RESOURCE_EXHAUSTED at once [default: 1024].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// Largest request or response message in bytes [default: 4194304].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Deadline of calls that set none [default: 60s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_REQUEST_TIMEOUT")]
    pub request_timeout: Option<HumanDuration>,
    /// HTTP/2 keepalive ping interval [default: 30s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_KEEPALIVE_INTERVAL")]
    pub keepalive_interval: Option<HumanDuration>,
    /// HTTP/2 keepalive ping timeout [default: 10s].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_KEEPALIVE_TIMEOUT")]
    pub keepalive_timeout: Option<HumanDuration>,
    /// Connections are closed gracefully after this age, to rebalance [default: 30m].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_MAX_CONNECTION_AGE")]
    pub max_connection_age: Option<HumanDuration>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long, action = ArgAction::SetTrue)]
    #[serde(skip)]
    pub print_config: bool,

    /// Round-robin weights per principal (TOML `[weights]`: principal = weight).
    #[arg(skip)]
    pub weights: BTreeMap<String, u32>,
    /// Static bearer tokens (TOML `[[tokens]]`: principal, sha256, roles).
    #[arg(skip)]
    pub tokens: Vec<TokenEntry>,
    /// Roles of client-certificate identities (TOML `[[certificates]]`: principal, roles).
    #[arg(skip)]
    pub certificates: Vec<CertificateEntry>,
    /// Custom roles (TOML `[roles]`: name = [RPC, ...]).
    #[arg(skip)]
    pub roles: BTreeMap<String, Vec<String>>,
}

impl Settings {
    /// Fills what is unset here from `file`.
    fn or(self, file: Settings) -> Settings {
        Settings {
            config: self.config,
            listen: self.listen.or(file.listen),
            upstream: self.upstream.or(file.upstream),
            region: self.region.or(file.region),
            endpoint_url: self.endpoint_url.or(file.endpoint_url),
            retry_mode: self.retry_mode.or(file.retry_mode),
            max_attempts: self.max_attempts.or(file.max_attempts),
            connect_timeout: self.connect_timeout.or(file.connect_timeout),
            operation_timeout: self.operation_timeout.or(file.operation_timeout),
            local_account_id: self.local_account_id.or(file.local_account_id),
            local_load_logs: if self.local_load_logs.is_empty() {
                file.local_load_logs
            } else {
                self.local_load_logs
            },
            local_event_capacity: self.local_event_capacity.or(file.local_event_capacity),
            insecure_no_auth: self.insecure_no_auth || file.insecure_no_auth,
            auth_open_health: self.auth_open_health.or(file.auth_open_health),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            tls_client_ca: self.tls_client_ca.or(file.tls_client_ca),
            jwks_file: self.jwks_file.or(file.jwks_file),
            jwks_url: self.jwks_url.or(file.jwks_url),
            jwt_issuer: self.jwt_issuer.or(file.jwt_issuer),
            jwt_audience: self.jwt_audience.or(file.jwt_audience),
            jwt_principal_claim: self.jwt_principal_claim.or(file.jwt_principal_claim),
            jwt_roles_claim: self.jwt_roles_claim.or(file.jwt_roles_claim),
            jwt_leeway: self.jwt_leeway.or(file.jwt_leeway),
            jwks_refresh_interval: self.jwks_refresh_interval.or(file.jwks_refresh_interval),
            jwks_min_refresh_interval: self
                .jwks_min_refresh_interval
                .or(file.jwks_min_refresh_interval),
            account_id: self.account_id.or(file.account_id),
            lookup_rate: self.lookup_rate.or(file.lookup_rate),
            read_rate: self.read_rate.or(file.read_rate),
            write_rate: self.write_rate.or(file.write_rate),
            limit_max_wait: self.limit_max_wait.or(file.limit_max_wait),
            fairness: self.fairness.or(file.fairness),
            redis_url: self.redis_url.or(file.redis_url),
            expected_replicas: self.expected_replicas.or(file.expected_replicas),
            lookup_cache_ttl: self.lookup_cache_ttl.or(file.lookup_cache_ttl),
            local_lookup_quota: self.local_lookup_quota.or(file.local_lookup_quota),
            local_read_quota: self.local_read_quota.or(file.local_read_quota),
            local_write_quota: self.local_write_quota.or(file.local_write_quota),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            log_format: self.log_format.or(file.log_format),
            otlp_endpoint: self.otlp_endpoint.or(file.otlp_endpoint),
            health_probe_interval: self.health_probe_interval.or(file.health_probe_interval),
            drain_timeout: self.drain_timeout.or(file.drain_timeout),
            max_concurrent_requests: self
                .max_concurrent_requests
                .or(file.max_concurrent_requests),
            max_message_size: self.max_message_size.or(file.max_message_size),
            request_timeout: self.request_timeout.or(file.request_timeout),
            keepalive_interval: self.keepalive_interval.or(file.keepalive_interval),
            keepalive_timeout: self.keepalive_timeout.or(file.keepalive_timeout),
            max_connection_age: self.max_connection_age.or(file.max_connection_age),
            print_config: self.print_config,
            // Tables come only from the file.
            weights: file.weights,
            tokens: file.tokens,
            certificates: file.certificates,
            roles: file.roles,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Upstream settings for building the SDK client.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub kind: UpstreamKind,
    /// None with `aws`: the AWS config chain decides.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub retry_mode: RetryMode,
    pub max_attempts: u32,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// With `aws`: the account, if configured (else STS is asked).
    pub account_id: Option<String>,
}

/// The effective, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: UpstreamConfig,
    pub local: LocalOptions,
    pub local_load_logs: Vec<PathBuf>,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub server: ServerConfig,
    /// `--print-config`: print and exit.
    pub print_config: bool,
}

/// How the gateway serves: side port, logs, health, shutdown and protections.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub metrics_listen: SocketAddr,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    pub health_probe_interval: Duration,
    pub drain_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_message_size: usize,
    pub request_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub max_connection_age: Duration,
}

impl Config {
    /// Reads flags and environment (and the TOML file they name).
    pub fn from_args() -> Result<Config, ConfigError> {
        Config::from_settings(Settings::parse())
    }

    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let file = match &settings.config {
            None => Settings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
        };
        Config::check(settings.or(file))
    }

    fn check(s: Settings) -> Result<Config, ConfigError> {
        let kind = s.upstream.unwrap_or(UpstreamKind::Local);
        let region = match (kind, s.region) {
            (UpstreamKind::Local, None) => Some("us-east-1".to_owned()),
            (_, region) => region,
        };
        if let Some(r) = &region {
            let ok = !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(invalid(
                    "region",
                    format!("'{r}' is not a Region name (e.g. us-east-1)"),
                ));
            }
        }
        if let Some(url) = &s.endpoint_url {
            if kind == UpstreamKind::Local {
                return Err(invalid("endpoint_url", "only with upstream = aws"));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "endpoint_url",
                    format!("'{url}' is not an http(s) URL"),
                ));
            }
        }
        let max_attempts = s.max_attempts.unwrap_or(3);
        if !(1..=10).contains(&max_attempts) {
            return Err(invalid(
                "max_attempts",
                format!("must be 1 to 10, got {max_attempts}"),
            ));
        }
        let positive = |key, d: Option<HumanDuration>, default| match d {
            Some(HumanDuration(d)) if d.is_zero() => Err(invalid(key, "must be more than zero")),
            Some(HumanDuration(d)) => Ok(d),
            None => Ok(default),
        };
        let connect_timeout =
            positive("connect_timeout", s.connect_timeout, Duration::from_secs(3))?;
        let operation_timeout = positive(
            "operation_timeout",
            s.operation_timeout,
            Duration::from_secs(30),
        )?;
        let defaults = LocalOptions::default();
        let account_id = s.local_account_id.unwrap_or(defaults.account_id);
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "local_account_id",
                format!("'{account_id}' is not a 12-digit account id"),
            ));
        }
        if kind == UpstreamKind::Aws && !s.local_load_logs.is_empty() {
            return Err(invalid("local_load_logs", "only with upstream = local"));
        }
        let event_capacity = s.local_event_capacity.unwrap_or(defaults.event_capacity);
        if event_capacity == 0 {
            return Err(invalid("local_event_capacity", "must be at least 1"));
        }
        let rate = |key: &'static str, value: Option<f64>, default: f64| match value {
            Some(r) if !(r > 0.0 && r.is_finite()) => {
                Err(invalid(key, format!("must be a positive number, got {r}")))
            }
            Some(r) => Ok(r),
            None => Ok(default),
        };
        let quotas = Quotas {
            lookup: rate("lookup_rate", s.lookup_rate, Quotas::GATEWAY.lookup)?,
            read: rate("read_rate", s.read_rate, Quotas::GATEWAY.read)?,
            write: rate("write_rate", s.write_rate, Quotas::GATEWAY.write)?,
        };
        let local_quotas = Quotas {
            lookup: rate(
                "local_lookup_quota",
                s.local_lookup_quota,
                Quotas::AWS.lookup,
            )?,
            read: rate("local_read_quota", s.local_read_quota, Quotas::AWS.read)?,
            write: rate("local_write_quota", s.local_write_quota, Quotas::AWS.write)?,
        };
        if let Some(url) = &s.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid(
                "redis_url",
                format!("'{url}' is not a redis:// URL"),
            ));
        }
        let expected_replicas = s.expected_replicas.unwrap_or(1);
        if expected_replicas == 0 {
            return Err(invalid("expected_replicas", "must be at least 1"));
        }
        if let Some(account) = &s.account_id
            && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "account_id",
                format!("'{account}' is not a 12-digit account id"),
            ));
        }
        if let Some((principal, _)) = s.weights.iter().find(|(_, w)| **w == 0) {
            return Err(invalid(
                "weights",
                format!("the weight of '{principal}' must be at least 1"),
            ));
        }
        let count = |key: &'static str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(invalid(key, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let server = ServerConfig {
            metrics_listen: s
                .metrics_listen
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9090))),
            log_format: s.log_format.unwrap_or(LogFormat::Human),
            otlp_endpoint: match s.otlp_endpoint {
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return Err(invalid(
                        "otlp_endpoint",
                        format!("'{url}' is not an http(s) URL"),
                    ));
                }
                url => url,
            },
            health_probe_interval: positive(
                "health_probe_interval",
                s.health_probe_interval,
                Duration::from_secs(30),
            )?,
            drain_timeout: positive("drain_timeout", s.drain_timeout, Duration::from_secs(30))?,
            max_concurrent_requests: count(
                "max_concurrent_requests",
                s.max_concurrent_requests,
                1024,
            )?,
            max_message_size: count("max_message_size", s.max_message_size, 4 << 20)?,
            request_timeout: positive(
                "request_timeout",
                s.request_timeout,
                Duration::from_secs(60),
            )?,
            keepalive_interval: positive(
                "keepalive_interval",
                s.keepalive_interval,
                Duration::from_secs(30),
            )?,
            keepalive_timeout: positive(
                "keepalive_timeout",
                s.keepalive_timeout,
                Duration::from_secs(10),
            )?,
            max_connection_age: positive(
                "max_connection_age",
                s.max_connection_age,
                Duration::from_secs(1800),
            )?,
        };
        let defaults_limits = LimitsConfig::default();
        let limits = LimitsConfig {
            quotas,
            max_wait: positive("limit_max_wait", s.limit_max_wait, defaults_limits.max_wait)?,
            fairness: s.fairness.unwrap_or(defaults_limits.fairness),
            weights: s.weights,
            redis_url: s.redis_url,
            expected_replicas,
            lookup_cache_ttl: s
                .lookup_cache_ttl
                .map_or(defaults_limits.lookup_cache_ttl, |d| d.0),
        };
        let listen = s
            .listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051)));
        let tls = match (s.tls_cert, s.tls_key, s.tls_client_ca) {
            (Some(cert), Some(key), client_ca) => Some(TlsConfig {
                cert,
                key,
                client_ca,
            }),
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
        let jwks = match (s.jwks_file, s.jwks_url) {
            (Some(_), Some(_)) => {
                return Err(invalid("jwks_url", "give jwks_file or jwks_url, not both"));
            }
            (Some(file), None) => Some(JwksSource::File(file)),
            (None, Some(url)) => {
                let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| url.starts_with(p));
                if !url.starts_with("https://") && !loopback {
                    return Err(invalid(
                        "jwks_url",
                        "must be https:// (http:// only on loopback)",
                    ));
                }
                Some(JwksSource::Url(url))
            }
            (None, None) => None,
        };
        let jwt = match jwks {
            None if s.jwt_issuer.is_some() || s.jwt_audience.is_some() => {
                return Err(invalid(
                    "jwks_file",
                    "JWT settings given but no jwks_file or jwks_url",
                ));
            }
            None => None,
            Some(jwks) => Some(JwtConfig {
                jwks,
                issuer: s
                    .jwt_issuer
                    .ok_or_else(|| invalid("jwt_issuer", "required with a JWKS"))?,
                audience: s
                    .jwt_audience
                    .ok_or_else(|| invalid("jwt_audience", "required with a JWKS"))?,
                principal_claim: s.jwt_principal_claim.unwrap_or_else(|| "sub".into()),
                roles_claim: s.jwt_roles_claim.unwrap_or_else(|| "roles".into()),
                leeway: s.jwt_leeway.map_or(Duration::from_secs(30), |d| d.0),
                refresh_interval: positive(
                    "jwks_refresh_interval",
                    s.jwks_refresh_interval,
                    Duration::from_secs(600),
                )?,
                min_refresh_interval: s
                    .jwks_min_refresh_interval
                    .map_or(Duration::from_secs(30), |d| d.0),
            }),
        };
        let auth = AuthConfig {
            tokens: s.tokens,
            certificates: s.certificates,
            roles: s.roles,
            jwt,
            tls,
            open_health: s.auth_open_health.unwrap_or(true),
            insecure_no_auth: s.insecure_no_auth,
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
        Ok(Config {
            listen,
            upstream: UpstreamConfig {
                kind,
                region,
                endpoint_url: s.endpoint_url,
                retry_mode: s.retry_mode.unwrap_or(RetryMode::Standard),
                max_attempts,
                connect_timeout,
                operation_timeout,
                account_id: s.account_id,
            },
            local: LocalOptions {
                account_id,
                event_capacity,
                quotas: local_quotas,
                ..defaults
            },
            local_load_logs: s.local_load_logs,
            auth,
            limits,
            server,
            print_config: s.print_config,
        })
    }
}

/// A URL with any `user:password@` part masked.
fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl Config {
    /// The effective configuration as JSON, secrets redacted (`--print-config`).
    pub fn redacted(&self) -> serde_json::Value {
        let secs = |d: Duration| format!("{}s", d.as_secs_f64());
        let quotas =
            |q: &Quotas| serde_json::json!({"lookup": q.lookup, "read": q.read, "write": q.write});
        serde_json::json!({
            "listen": self.listen.to_string(),
            "upstream": {
                "kind": format!("{:?}", self.upstream.kind).to_lowercase(),
                "region": self.upstream.region,
                "endpoint_url": self.upstream.endpoint_url.as_deref().map(redact_url),
                "account_id": self.upstream.account_id,
                "retry_mode": format!("{:?}", self.upstream.retry_mode).to_lowercase(),
                "max_attempts": self.upstream.max_attempts,
                "connect_timeout": secs(self.upstream.connect_timeout),
                "operation_timeout": secs(self.upstream.operation_timeout),
            },
            "local": {
                "account_id": self.local.account_id,
                "event_capacity": self.local.event_capacity,
                "quotas": quotas(&self.local.quotas),
                "load_logs": self.local_load_logs,
            },
            "auth": {
                "enabled": self.auth.is_enabled(),
                "insecure_no_auth": self.auth.insecure_no_auth,
                "open_health": self.auth.open_health,
                "tokens": self.auth.tokens.iter()
                    .map(|t| serde_json::json!({"principal": t.principal, "sha256": "<redacted>", "roles": t.roles}))
                    .collect::<Vec<_>>(),
                "certificates": self.auth.certificates.iter()
                    .map(|c| serde_json::json!({"principal": c.principal, "roles": c.roles}))
                    .collect::<Vec<_>>(),
                "roles": self.auth.roles,
                "tls": self.auth.tls.as_ref().map(|t| serde_json::json!({
                    "cert": t.cert, "key": t.key, "client_ca": t.client_ca,
                })),
                "jwt": self.auth.jwt.as_ref().map(|j| serde_json::json!({
                    "jwks": match &j.jwks {
                        JwksSource::File(p) => p.display().to_string(),
                        JwksSource::Url(u) => redact_url(u),
                    },
                    "issuer": j.issuer, "audience": j.audience,
                    "principal_claim": j.principal_claim, "roles_claim": j.roles_claim,
                    "leeway": secs(j.leeway), "refresh_interval": secs(j.refresh_interval),
                    "min_refresh_interval": secs(j.min_refresh_interval),
                })),
            },
            "limits": {
                "quotas": quotas(&self.limits.quotas),
                "max_wait": secs(self.limits.max_wait),
                "fairness": format!("{:?}", self.limits.fairness),
                "weights": self.limits.weights,
                "redis_url": self.limits.redis_url.as_deref().map(redact_url),
                "expected_replicas": self.limits.expected_replicas,
                "lookup_cache_ttl": secs(self.limits.lookup_cache_ttl),
            },
            "server": {
                "metrics_listen": self.server.metrics_listen.to_string(),
                "log_format": format!("{:?}", self.server.log_format).to_lowercase(),
                "otlp_endpoint": self.server.otlp_endpoint.as_deref().map(redact_url),
                "health_probe_interval": secs(self.server.health_probe_interval),
                "drain_timeout": secs(self.server.drain_timeout),
                "max_concurrent_requests": self.server.max_concurrent_requests,
                "max_message_size": self.server.max_message_size,
                "request_timeout": secs(self.server.request_timeout),
                "keepalive_interval": secs(self.server.keepalive_interval),
                "keepalive_timeout": secs(self.server.keepalive_timeout),
                "max_connection_age": secs(self.server.max_connection_age),
            },
        })
    }
}

impl Default for Config {
    /// The configuration of `cloudtrail-gateway` with no arguments.
    fn default() -> Self {
        Config::check(Settings::default()).unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["cloudtrail-gateway"];
        argv.extend_from_slice(args);
        Config::from_settings(Settings::try_parse_from(argv).expect("flags parse"))
    }

    #[test]
    fn no_arguments_means_local_on_loopback() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.upstream.kind, UpstreamKind::Local);
        assert_eq!(c.upstream.region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            "2m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(120)
        );
        assert_eq!(
            "3".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(3)
        );
        assert!("3h".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases: [(&[&str], &str); 4] = [
            (&["--endpoint-url", "http://x"], "endpoint_url"),
            (
                &["--upstream", "aws", "--endpoint-url", "ftp://x"],
                "endpoint_url",
            ),
            (&["--max-attempts", "0"], "max_attempts"),
            (&["--operation-timeout", "0s"], "operation_timeout"),
        ];
        for (args, key) in cases {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{args:?}: {err}");
        }
    }

    #[test]
    fn authentication_settings_are_checked() {
        let cases: [(&[&str], &str); 7] = [
            (&["--listen", "0.0.0.0:50051"], "insecure_no_auth"),
            (&["--tls-cert", "c.pem"], "tls_key"),
            (&["--tls-client-ca", "ca.pem"], "tls_client_ca"),
            (
                &["--jwks-file", "j.json", "--jwks-url", "https://x/jwks"],
                "jwks_url",
            ),
            (&["--jwks-url", "http://idp.example.com/jwks"], "jwks_url"),
            (
                &["--jwks-file", "j.json", "--jwt-audience", "gw"],
                "jwt_issuer",
            ),
            (&["--jwt-issuer", "https://idp"], "jwks_file"),
        ];
        for (args, key) in cases {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{args:?}: {err}");
        }
        let open = parse(&["--listen", "0.0.0.0:50051", "--insecure-no-auth"]).unwrap();
        assert!(open.auth.insecure_no_auth && !open.auth.is_enabled());
        let jwt = parse(&[
            "--jwks-url",
            "http://127.0.0.1:8080/jwks",
            "--jwt-issuer",
            "i",
            "--jwt-audience",
            "a",
        ])
        .unwrap();
        assert_eq!(jwt.auth.jwt.map(|j| j.principal_claim), Some("sub".into()));
    }

    #[test]
    fn tokens_and_roles_come_from_the_file() {
        let dir = std::env::temp_dir().join(format!("ctgw-config-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateway.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:50051\"\n[[tokens]]\nprincipal = \"ci\"\nsha256 = \"00\"\nroles = [\"auditor\"]\n[roles]\nauditor = [\"LookupEvents\"]\n",
        )
        .unwrap();
        let c = parse(&["--config", file.to_str().unwrap()]).unwrap();
        assert!(
            c.auth.is_enabled(),
            "a token makes a public address acceptable"
        );
        assert_eq!(c.auth.tokens[0].principal, "ci");
        assert_eq!(c.auth.roles["auditor"], ["LookupEvents"]);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("ctgw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateway.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\nregion = \"eu-west-1\"\nmax_attempts = 5\n",
        )
        .unwrap();
        let c = parse(&["--config", file.to_str().unwrap(), "--region", "ap-south-1"]).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.upstream.region.as_deref(), Some("ap-south-1"));
        assert_eq!(c.upstream.max_attempts, 5);
        std::fs::write(&file, "listen_address = \"x\"\n").unwrap();
        let err = parse(&["--config", file.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_address"), "{err}");
    }
}
