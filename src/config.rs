//! One typed configuration: command-line flags, `CLOUDTRAIL_GATEWAY_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence, checked once at start.
//!
//! Every setting has the same name everywhere: flag `--max-attempts`, env
//! `CLOUDTRAIL_GATEWAY_MAX_ATTEMPTS`, TOML key `max_attempts`.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Parser, ValueEnum};
use serde::Deserialize;

use crate::local::LocalOptions;

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
    /// Embedded CloudTrail: events kept per Region, oldest dropped first [default: 100000].
    #[arg(long, env = "CLOUDTRAIL_GATEWAY_LOCAL_EVENT_CAPACITY")]
    pub local_event_capacity: Option<usize>,
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
}

/// The effective, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: UpstreamConfig,
    pub local: LocalOptions,
    pub local_load_logs: Vec<PathBuf>,
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
        Ok(Config {
            listen: s
                .listen
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051))),
            upstream: UpstreamConfig {
                kind,
                region,
                endpoint_url: s.endpoint_url,
                retry_mode: s.retry_mode.unwrap_or(RetryMode::Standard),
                max_attempts,
                connect_timeout,
                operation_timeout,
            },
            local: LocalOptions {
                account_id,
                event_capacity,
                ..defaults
            },
            local_load_logs: s.local_load_logs,
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
