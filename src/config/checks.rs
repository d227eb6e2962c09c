//! The configuration's errors, and the checks several settings share. Every error names the key.

use std::{path::PathBuf, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or environment variable clap could not parse (or `--help`/`--version`).
    #[error("{0}")]
    Cli(clap::Error),
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A 12-digit AWS account id.
pub fn account_id(key: &str, value: &str) -> Result<(), ConfigError> {
    match crate::convert::rules::account_id_problem(value) {
        None => Ok(()),
        Some(problem) => Err(invalid(key, problem)),
    }
}

/// A Region name.
pub fn region(key: &str, value: &str) -> Result<(), ConfigError> {
    match crate::convert::rules::region_problem(value) {
        None => Ok(()),
        Some(problem) => Err(invalid(key, problem)),
    }
}

/// A URL with one of `schemes` (`"http"`, `"https"`, `"redis"`, ...).
pub fn url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let scheme = value.split_once("://").map(|(s, _)| s);
    let shown = mask(value);
    if value.contains("://***@") {
        // `--print-config` output used as a file: the credentials were masked, not kept.
        return Err(invalid(
            key,
            format!(
                "'{shown}' holds credentials masked by --print-config: put them back, or give the setting by its environment variable"
            ),
        ));
    }
    if scheme.is_some_and(|s| schemes.contains(&s)) && value.len() > scheme.map_or(0, str::len) + 3
    {
        Ok(())
    } else {
        let wanted: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        Err(invalid(
            key,
            format!("'{shown}' is not a {} URL", wanted.join(" or ")),
        ))
    }
}

/// A secret's printable form: credentials in an URL masked (`redis://***@host:6379`), anything
/// else withheld.
pub fn mask(text: &str) -> String {
    match (text.split_once("://"), text.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &text[at + 1..]),
        (Some(_), None) => text.to_owned(),
        _ => "<redacted>".to_owned(),
    }
}

/// A duration above zero.
pub fn positive(key: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        Err(invalid(key, "must be more than zero"))
    } else {
        Ok(value)
    }
}

/// A count of at least one.
pub fn at_least_one<N: PartialEq + Default>(key: &str, value: N) -> Result<N, ConfigError> {
    if value == N::default() {
        Err(invalid(key, "must be at least 1"))
    } else {
        Ok(value)
    }
}

/// Calls per second: positive and finite.
pub fn rate(key: &str, value: f64) -> Result<f64, ConfigError> {
    if value > 0.0 && value.is_finite() {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!("must be a positive number, got {value}"),
        ))
    }
}

/// A file the gateway will read at start: it must be readable now.
pub fn readable(key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_checks_name_the_key() {
        assert!(account_id("a", "123456789012").is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901x"] {
            assert!(
                account_id("a", bad)
                    .unwrap_err()
                    .to_string()
                    .contains("`a`")
            );
        }
        assert!(url("u", "https://x", &["http", "https"]).is_ok());
        assert!(url("u", "https://", &["http", "https"]).is_err());
        assert!(url("u", "ftp://x", &["http", "https"]).is_err());
        assert!(url("r", "rediss://h:6379", &["redis", "rediss"]).is_ok());
        assert!(positive("d", Duration::ZERO).is_err());
        assert!(at_least_one("n", 0usize).is_err());
        assert!(rate("r", f64::INFINITY).is_err() && rate("r", 0.5).is_ok());
    }
}
