//! One typed configuration from command-line flags, `CLOUDTRAIL_GATEWAY_*` environment variables and
//! an optional TOML file (`--config`), in that order of precedence, checked once at start.
//!
//! Each setting is declared once, as a field of one of the `*Settings` structs below (one per
//! concern): its doc comment is the help text, its `#[arg]` gives the flag and the default, the field
//! name is the TOML key, and the environment variable is derived from it (`max_attempts` →
//! `CLOUDTRAIL_GATEWAY_MAX_ATTEMPTS`). A setting marked `hide_env_values` is secret: `--print-config`
//! masks it. The file's values become the flags' defaults, so clap applies one precedence to all.
//! Tables (`[[tokens]]`, `[roles]`, ...) come only from the file (`FileTables`). The README's
//! configuration table is rendered from the same declarations (`reference`), and a test compares.

mod accounts;
mod auth;
mod caches;
mod checks;
mod duration;
mod limits;
mod local;
mod reference;
mod server;
mod store;
mod streams;
mod tables;
mod upstream;

use std::{ffi::OsString, path::PathBuf};

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;

pub use caches::CacheConfig;
pub use checks::ConfigError;
pub use duration::HumanDuration;
pub use local::LocalConfig;
pub use server::ServerConfig;
pub use store::{LOCAL_SOURCE, StoreConfig};
pub use tables::FileTables;
pub use upstream::{LOCAL_DEFAULT_REGION, RetryMode, UpstreamConfig, UpstreamKind};

use crate::{
    accounts::AccountsConfig, auth::AuthConfig, feeds::StreamConfig, limits::LimitsConfig,
};

/// Every environment variable is this prefix and the setting's key in upper case.
pub const ENV_PREFIX: &str = "CLOUDTRAIL_GATEWAY_";

/// The settings as given on the command line and in the environment (the file's values are their
/// defaults).
#[derive(Debug, Parser)]
#[command(
    name = "cloudtrail-gateway",
    version,
    about = "A gRPC gateway to AWS CloudTrail"
)]
pub struct Settings {
    /// TOML file with any of these settings (keys as the flags, with underscores) and the tables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub server: server::ServerSettings,
    #[command(flatten)]
    pub upstream: upstream::UpstreamSettings,
    #[command(flatten)]
    pub accounts: accounts::AccountSettings,
    #[command(flatten)]
    pub local: local::LocalSettings,
    #[command(flatten)]
    pub auth: auth::AuthSettings,
    #[command(flatten)]
    pub limits: limits::LimitSettings,
    #[command(flatten)]
    pub caches: caches::CacheSettings,
    #[command(flatten)]
    pub streams: streams::StreamSettings,
    #[command(flatten)]
    pub store: store::StoreSettings,
    /// Check the configuration as start-up does, print it as TOML (credentials in URLs masked), and
    /// exit.
    #[arg(long)]
    pub print_config: bool,
}

/// The effective, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub upstream: UpstreamConfig,
    pub accounts: AccountsConfig,
    pub local: LocalConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub caches: CacheConfig,
    pub streams: StreamConfig,
    pub store: StoreConfig,
    pub server: ServerConfig,
    /// With `--print-config`: the effective configuration as TOML, to print instead of serving.
    pub print_config: Option<String>,
}

/// Every key a TOML configuration file may have: the settings and the tables.
pub fn file_keys() -> Vec<String> {
    command()
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .filter(|id| !matches!(id.as_str(), "config" | "print_config" | "help" | "version"))
        .chain(
            FileTables::DESCRIBED
                .iter()
                .map(|(key, _)| key.trim_matches(['[', ']']).to_owned()),
        )
        .collect()
}

/// The settings' command with every environment variable attached.
pub fn command() -> clap::Command {
    Settings::command().mut_args(|arg| {
        let id = arg.get_id().as_str();
        if matches!(id, "print_config" | "help" | "version") {
            return arg;
        }
        let env = format!("{ENV_PREFIX}{}", id.to_uppercase());
        arg.env(env)
    })
}

/// The README's configuration table, rendered from the settings' declarations.
pub fn markdown_table() -> String {
    reference::markdown_table(&command())
}

impl Config {
    /// Reads flags, environment and the TOML file they name, and checks the result.
    pub fn from_args() -> Result<Config, ConfigError> {
        Config::from_args_of(std::env::args_os())
    }

    pub fn from_args_of<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut command = command();
        let tables = match config_path(&command, &args) {
            Some(path) => {
                let (with_file, tables) = file_layer(command, &path)?;
                command = with_file;
                tables
            }
            None => FileTables::default(),
        };
        let matches = command
            .clone()
            .try_get_matches_from(&args)
            .map_err(ConfigError::Cli)?;
        let settings = Settings::from_arg_matches(&matches).map_err(ConfigError::Cli)?;
        let mut config = Config::check(settings, tables.clone())?;
        if config.print_config.is_some() {
            config.print_config = Some(reference::effective_toml(&command, &matches, &tables));
        }
        Ok(config)
    }

    /// Checks every part as start-up does (files named in the settings included).
    pub fn check(s: Settings, tables: FileTables) -> Result<Config, ConfigError> {
        let upstream = s.upstream.check()?;
        let accounts = s.accounts.check(tables.accounts)?;
        let local = s.local.check(&upstream)?;
        let server = s.server.check()?;
        let auth = s.auth.check(
            &server.listen,
            tables.tokens,
            tables.certificates,
            tables.roles,
        )?;
        let limits = s.limits.check(tables.weights)?;
        let streams = s.streams.check()?;
        let store = s.store.check(&upstream, tables.log_sources)?;
        Ok(Config {
            upstream,
            accounts,
            local,
            auth,
            limits,
            caches: s.caches.check(),
            streams,
            store,
            server,
            print_config: s.print_config.then(String::new),
        })
    }
}

impl Default for Config {
    /// The configuration of `cloudtrail-gateway` with no arguments.
    fn default() -> Self {
        // The command without environment variables: defaults only, whatever the process has set.
        match Settings::try_parse_from(["cloudtrail-gateway"])
            .map_err(ConfigError::Cli)
            .and_then(|s| Config::check(s, FileTables::default()))
        {
            Ok(config) => config,
            Err(e) => unreachable!("the defaults are valid: {e}"),
        }
    }
}

/// The `--config` path, if any (read before the full parse, whose defaults depend on the file).
fn config_path(command: &clap::Command, args: &[OsString]) -> Option<PathBuf> {
    let matches: ArgMatches = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    matches.get_one::<PathBuf>("config").cloned()
}

/// Reads the TOML file: its scalar settings become the flags' defaults, its tables are returned.
fn file_layer(
    mut command: clap::Command,
    path: &PathBuf,
) -> Result<(clap::Command, FileTables), ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let document: toml::Table = toml::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
    let mut tables = toml::Table::new();
    for (key, value) in document {
        if FileTables::is_table(&key) {
            tables.insert(key, value);
            continue;
        }
        let known = command.get_arguments().any(|a| {
            a.get_id() == key.as_str() && !matches!(key.as_str(), "config" | "print_config")
        });
        if !known {
            return Err(parse_error(format!("unknown key `{key}`")));
        }
        let values = match value {
            toml::Value::Array(items) => items.into_iter().map(scalar).collect::<Option<Vec<_>>>(),
            one => scalar(one).map(|v| vec![v]),
        }
        .ok_or_else(|| {
            parse_error(format!(
                "`{key}` must be a string, number, boolean or list of them"
            ))
        })?;
        command = command.mut_arg(&key, |arg| arg.default_values(values));
    }
    let tables = FileTables::deserialize(toml::Value::Table(tables))
        .map_err(|e| parse_error(e.to_string()))?;
    Ok((command, tables))
}

/// A TOML scalar as the text a flag would carry.
fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
