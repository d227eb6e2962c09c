//! The accounts and Regions calls can go to (`[[accounts]]`), and how calls reach them.

use std::time::Duration;

use clap::{ArgAction, Args};
use serde::{Deserialize, Serialize};

use super::{
    checks::{self, ConfigError, account_id, at_least_one, invalid, positive},
    duration::HumanDuration,
};
use crate::accounts::{Account, AccountRole, AccountsConfig};

#[derive(Debug, Args)]
pub struct AccountSettings {
    /// With [[accounts]]: where calls that name no account (x-cloudtrail-account) go [default: the
    /// first account].
    #[arg(long, value_name = "ID")]
    pub default_account: Option<String>,
    /// Without [[accounts]]: Regions calls may name (x-cloudtrail-region) besides `region`
    /// (comma-separated in the environment variable).
    #[arg(long, value_name = "REGION", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// With [[accounts]]: make each call as its caller, through a role session whose SourceIdentity
    /// and name are the principal (CloudTrail then records the caller); off: one session per
    /// account, as the gateway.
    #[arg(long, value_name = "BOOL", default_value = "true", action = ArgAction::Set)]
    pub caller_identity: bool,
    /// The Region whose STS endpoint assumes the accounts' roles [default: the default account's
    /// first Region].
    #[arg(long, value_name = "REGION")]
    pub sts_region: Option<String>,
    /// Audit records for reads too, not only for changes.
    #[arg(long, value_name = "BOOL", default_value = "false", action = ArgAction::Set)]
    pub audit_reads: bool,
    /// SDK clients kept at most, one per account, Region and caller (least recently used dropped).
    #[arg(long, value_name = "N", default_value = "10000")]
    pub max_upstream_clients: u64,
    /// An SDK client unused this long is dropped.
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub upstream_client_idle: HumanDuration,
    /// How long an account's trails' home Regions are kept (a call naming a trail by name goes to
    /// its home Region); a trail created or deleted through the gateway refreshes them at once.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub trail_home_ttl: HumanDuration,
}

/// One `[[accounts]]` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// The 12-digit account id.
    pub id: String,
    /// The role the gateway assumes there (`arn:aws:iam::<id>:role/<name>`).
    pub role_arn: String,
    /// The external id the role's trust policy asks for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// How long each role session lasts (15m to 12h; default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<String>,
    /// The Regions calls may go to in this account; the first is its default.
    pub regions: Vec<String>,
}

/// STS's bounds on DurationSeconds.
const SESSION_MIN: Duration = Duration::from_secs(900);
const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);

fn role_arn(key: &str, arn: &str, account: &str) -> Result<(), ConfigError> {
    let name = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .filter(|(id, name)| !id.is_empty() && !name.is_empty());
    match name {
        None => Err(invalid(
            key,
            format!("'{arn}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
        )),
        Some((id, _)) if id != account => Err(invalid(
            key,
            format!("the role is in account {id}, not in {account}"),
        )),
        Some(_) => Ok(()),
    }
}

/// STS's rule for ExternalId: 2-1224 characters of `[\w+=,.@:/-]`.
fn external_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(key, "2 to 1224 characters of [A-Za-z0-9_+=,.@:/-]"))
    }
}

impl AccountSettings {
    pub fn check(self, entries: Vec<AccountEntry>) -> Result<AccountsConfig, ConfigError> {
        let mut accounts: Vec<Account> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let key = |field: &str| format!("accounts[{i}].{field}");
            account_id(&key("id"), &entry.id)?;
            if accounts.iter().any(|a| a.id == entry.id) {
                return Err(invalid(
                    key("id"),
                    format!("account {} is listed twice", entry.id),
                ));
            }
            role_arn(&key("role_arn"), &entry.role_arn, &entry.id)?;
            if let Some(id) = &entry.external_id {
                external_id(&key("external_id"), id)?;
            }
            let session_duration = match &entry.session_duration {
                None => Duration::from_secs(3600),
                Some(text) => {
                    let d = text
                        .parse::<HumanDuration>()
                        .map_err(|e| invalid(key("session_duration"), e))?
                        .0;
                    if !(SESSION_MIN..=SESSION_MAX).contains(&d) {
                        return Err(invalid(
                            key("session_duration"),
                            "must be 15m to 12h (STS's bounds)",
                        ));
                    }
                    d
                }
            };
            if entry.regions.is_empty() {
                return Err(invalid(key("regions"), "list at least one Region"));
            }
            for region in &entry.regions {
                checks::region(&key("regions"), region)?;
            }
            accounts.push(Account {
                id: entry.id,
                role: Some(AccountRole {
                    arn: entry.role_arn,
                    external_id: entry.external_id,
                    session_duration,
                }),
                regions: entry.regions,
            });
        }
        if let Some(default) = &self.default_account {
            account_id("default_account", default)?;
            if !accounts.iter().any(|a| a.id == *default) {
                return Err(invalid(
                    "default_account",
                    format!("{default} is not one of the [[accounts]]"),
                ));
            }
        }
        if !accounts.is_empty() && !self.regions.is_empty() {
            return Err(invalid(
                "regions",
                "with [[accounts]], each account lists its own Regions",
            ));
        }
        for region in self.regions.iter().chain(&self.sts_region) {
            checks::region("regions", region)?;
        }
        Ok(AccountsConfig {
            accounts,
            default_account: self.default_account,
            regions: self.regions,
            caller_identity: self.caller_identity,
            sts_region: self.sts_region,
            audit_reads: self.audit_reads,
            max_clients: at_least_one("max_upstream_clients", self.max_upstream_clients)?,
            client_idle: positive("upstream_client_idle", self.upstream_client_idle.0)?,
            trail_home_ttl: positive("trail_home_ttl", self.trail_home_ttl.0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: AccountSettings,
    }

    fn settings(args: &[&str]) -> AccountSettings {
        Cli::parse_from(std::iter::once("x").chain(args.iter().copied())).settings
    }

    fn entry(id: &str) -> AccountEntry {
        AccountEntry {
            id: id.into(),
            role_arn: format!("arn:aws:iam::{id}:role/cloudtrail-gateway"),
            regions: vec!["us-east-1".into()],
            ..Default::default()
        }
    }

    fn problem(args: &[&str], entries: Vec<AccountEntry>) -> String {
        match settings(args).check(entries) {
            Err(ConfigError::Invalid { key, reason }) => format!("{key}: {reason}"),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn accounts_are_checked_naming_the_key() {
        let ok = settings(&[]).check(vec![entry("111111111111"), entry("222222222222")]);
        let ok = ok.unwrap();
        assert_eq!(ok.accounts.len(), 2);
        assert!(ok.caller_identity, "on by default");
        let mut other_account = entry("111111111111");
        other_account.role_arn = "arn:aws:iam::222222222222:role/x".into();
        assert!(problem(&[], vec![other_account]).starts_with("accounts[0].role_arn"));
        let mut short = entry("111111111111");
        short.session_duration = Some("5m".into());
        assert!(problem(&[], vec![short]).starts_with("accounts[0].session_duration"));
        let mut no_regions = entry("111111111111");
        no_regions.regions.clear();
        assert!(problem(&[], vec![no_regions]).starts_with("accounts[0].regions"));
        assert!(
            problem(&[], vec![entry("111111111111"), entry("111111111111")])
                .starts_with("accounts[1].id")
        );
        assert!(
            problem(
                &["--default-account", "333333333333"],
                vec![entry("111111111111")]
            )
            .starts_with("default_account")
        );
        assert!(
            problem(&["--regions", "eu-west-1"], vec![entry("111111111111")])
                .starts_with("regions")
        );
        let mut bad_external = entry("111111111111");
        bad_external.external_id = Some("x".into());
        assert!(problem(&[], vec![bad_external]).starts_with("accounts[0].external_id"));
    }
}
