//! The accounts and Regions calls can go to, and where one call goes.
//!
//! A call names its target in metadata (`x-cloudtrail-account`, `x-cloudtrail-region`), or a trail ARN
//! in its request names it (and wins: metadata that disagrees is refused), or it goes to the
//! defaults. Only configured accounts and their Regions can be targeted. With `[[accounts]]`, calls
//! to an account are made through its role (`upstream::sessions`), as the caller. Without, the
//! gateway serves one account, its upstream's, in `region` and the `regions` listed, with its own
//! identity.

pub mod homes;
pub mod names;

use std::{collections::HashMap, time::Duration};

use tonic::{Code, metadata::MetadataMap};

use crate::{
    convert::rules,
    error::{Error, Refused, Violations},
};

/// The metadata keys a call names its target with.
pub const ACCOUNT_KEY: &str = "x-cloudtrail-account";
pub const REGION_KEY: &str = "x-cloudtrail-region";

/// The role the gateway assumes in an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRole {
    /// `arn:aws:iam::<account>:role/<name>`.
    pub arn: String,
    pub external_id: Option<String>,
    pub session_duration: Duration,
}

/// One account calls can go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    /// The role calls are made through; `None`: the gateway's own credentials (no `[[accounts]]`).
    pub role: Option<AccountRole>,
    /// The Regions calls may go to; the first is the account's default.
    pub regions: Vec<String>,
}

/// The accounts part of the configuration, checked.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// `[[accounts]]`.
    pub accounts: Vec<Account>,
    /// Calls that name no account go here (a configured one); else the first configured.
    pub default_account: Option<String>,
    /// Without `[[accounts]]`: the Regions calls may name besides the upstream's `region`.
    pub regions: Vec<String>,
    /// Calls to configured accounts are made as the caller (AssumeRole with SourceIdentity).
    pub caller_identity: bool,
    /// Where STS is called (its Regional endpoint); default: the default account's first Region.
    pub sts_region: Option<String>,
    /// Reads get audit records too, not only changes.
    pub audit_reads: bool,
    /// SDK clients kept at most, one per (account, Region, identity).
    pub max_clients: u64,
    /// An SDK client unused this long is dropped.
    pub client_idle: Duration,
    /// How long an account's trails' home Regions are kept.
    pub trail_home_ttl: Duration,
}

pub use crate::target::Target;

/// What a call's metadata asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Requested {
    pub account: Option<String>,
    pub region: Option<String>,
}

/// The target keys of `metadata`, each checked: present at most once, well formed.
pub fn requested(metadata: &MetadataMap) -> Result<Requested, Error> {
    let mut v = Violations::default();
    let mut one = |key: &str, problem: fn(&str) -> Option<String>| {
        let mut values = metadata.get_all(key).iter();
        let (first, second) = (values.next(), values.next());
        match (first, second) {
            (None, _) => None,
            (Some(_), Some(_)) => {
                v.add(key, "given more than once");
                None
            }
            (Some(value), None) => match value
                .to_str()
                .map_err(|_| "not printable ASCII".to_owned())
                .and_then(|text| problem(text).map_or(Ok(text), Err))
            {
                Ok(text) => Some(text.to_owned()),
                Err(p) => {
                    v.add(key, p);
                    None
                }
            },
        }
    };
    let account = one(ACCOUNT_KEY, rules::account_id_problem);
    let region = one(REGION_KEY, rules::region_problem);
    v.into_result(Requested { account, region })
}

fn refused(code: Code, reason: &'static str, message: String) -> Error {
    Error::Refused(Refused::new(code, reason, message))
}

/// The accounts the gateway can call, and its defaults.
#[derive(Debug)]
pub struct Accounts {
    by_id: HashMap<String, Account>,
    default: Target,
    /// `[[accounts]]` configured: calls go through their roles.
    configured: bool,
}

impl Accounts {
    /// The `[[accounts]]` (at least one, checked: each with a Region).
    pub fn configured(config: &AccountsConfig) -> Accounts {
        Accounts::of(
            config.accounts.clone(),
            config.default_account.as_deref(),
            true,
        )
    }

    /// Without `[[accounts]]`: the upstream's one `account`, in `region` and `config.regions`.
    pub fn single(config: &AccountsConfig, account: &str, region: &str) -> Accounts {
        let mut regions = vec![region.to_owned()];
        regions.extend(config.regions.iter().filter(|r| *r != region).cloned());
        let only = Account {
            id: account.to_owned(),
            role: None,
            regions,
        };
        Accounts::of(vec![only], None, false)
    }

    fn of(accounts: Vec<Account>, default: Option<&str>, configured: bool) -> Accounts {
        let first = accounts.first();
        let default_account = default
            .or(first.map(|a| a.id.as_str()))
            .unwrap_or_default()
            .to_owned();
        let by_id: HashMap<String, Account> =
            accounts.into_iter().map(|a| (a.id.clone(), a)).collect();
        let default_region = by_id
            .get(&default_account)
            .and_then(|a| a.regions.first())
            .cloned()
            .unwrap_or_default();
        Accounts {
            default: Target {
                account: default_account.into(),
                region: default_region.into(),
            },
            by_id,
            configured,
        }
    }

    pub fn default_target(&self) -> &Target {
        &self.default
    }

    /// The account `id`, if calls can go there.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.by_id.get(id)
    }

    /// Whether `[[accounts]]` are configured (calls go through their roles).
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// Every account and Region calls can go to, sorted.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .by_id
            .values()
            .flat_map(|a| {
                a.regions.iter().map(|r| Target {
                    account: a.id.as_str().into(),
                    region: r.as_str().into(),
                })
            })
            .collect();
        targets.sort();
        targets
    }

    /// `target`'s account in `region` (a trail's home Region), if the gateway serves it there.
    pub fn in_region(&self, target: &Target, region: String) -> Result<Target, Error> {
        let account = self.by_id.get(&*target.account).ok_or_else(|| {
            refused(
                Code::NotFound,
                "AccountNotConfigured",
                format!(
                    "account {} is not configured in this gateway",
                    target.account
                ),
            )
        })?;
        if !account.regions.contains(&region) {
            return Err(refused(
                Code::FailedPrecondition,
                "RegionNotEnabled",
                format!(
                    "the trail's home Region {region} is not enabled for account {} in this gateway (enabled: {})",
                    target.account,
                    account.regions.join(", ")
                ),
            ));
        }
        Ok(Target {
            account: target.account.clone(),
            region: region.into(),
        })
    }

    /// Where a call goes: the trail ARNs it names (if any) over its metadata over the defaults, and
    /// only where the gateway may go. `refs` are the request's trail names and ARNs.
    pub fn resolve(&self, requested: Requested, refs: &[String]) -> Result<Target, Error> {
        // A malformed ARN routes nothing: the request's validation refuses it, naming its field.
        let arns: Vec<_> = refs
            .iter()
            .filter(|r| r.starts_with("arn:"))
            .filter_map(|a| rules::parse_arn(a).ok().map(|parsed| (a, parsed)))
            .collect();
        // Every ARN's partition, not only the first's: a second one elsewhere would go upstream.
        if let Some((arn, parsed)) = arns.iter().find(|(_, p)| p.partition != "aws") {
            return Err(refused(
                Code::InvalidArgument,
                "PartitionNotServed",
                format!(
                    "'{arn}' is in the {} partition; this gateway serves the aws partition",
                    parsed.partition
                ),
            ));
        }
        let mut arns = arns.into_iter();
        let parsed = arns.next();
        if let Some((first, one)) = &parsed
            && let Some((other, _)) =
                arns.find(|(_, p)| (p.account, p.region) != (one.account, one.region))
        {
            return Err(refused(
                Code::InvalidArgument,
                "TargetMismatch",
                format!(
                    "{first} and {other} are in different accounts or Regions: one call goes to one"
                ),
            ));
        }
        let (account, region) = match parsed {
            Some((arn, parsed)) => {
                for (key, asked, named) in [
                    (ACCOUNT_KEY, &requested.account, parsed.account),
                    (REGION_KEY, &requested.region, parsed.region),
                ] {
                    if let Some(asked) = asked
                        && asked != named
                    {
                        return Err(refused(
                            Code::InvalidArgument,
                            "TargetMismatch",
                            format!(
                                "{key} says {asked}, but the request's ARN {arn} is in {named}"
                            ),
                        ));
                    }
                }
                (parsed.account.to_owned(), Some(parsed.region.to_owned()))
            }
            None => (
                requested
                    .account
                    .unwrap_or_else(|| self.default.account.to_string()),
                requested.region,
            ),
        };
        let Some(known) = self.by_id.get(&account) else {
            let served: Vec<&str> = self.by_id.keys().map(String::as_str).collect();
            return Err(refused(
                Code::NotFound,
                "AccountNotConfigured",
                format!(
                    "account {account} is not configured in this gateway (it serves {})",
                    served.join(", ")
                ),
            ));
        };
        let region = match region {
            Some(region) => region,
            None => known.regions.first().cloned().unwrap_or_default(),
        };
        if !known.regions.contains(&region) {
            return Err(refused(
                Code::FailedPrecondition,
                "RegionNotEnabled",
                format!(
                    "Region {region} is not enabled for account {account} in this gateway (enabled: {})",
                    known.regions.join(", ")
                ),
            ));
        }
        Ok(Target {
            account: account.into(),
            region: region.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn accounts() -> Accounts {
        let account = |id: &str| Account {
            id: id.into(),
            role: Some(AccountRole {
                arn: format!("arn:aws:iam::{id}:role/cloudtrail"),
                external_id: None,
                session_duration: Duration::from_secs(3600),
            }),
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
        };
        Accounts::configured(&AccountsConfig {
            accounts: vec![account("111111111111"), account("222222222222")],
            ..crate::config::Config::default().accounts
        })
    }

    fn code(result: Result<Target, Error>) -> Code {
        match result {
            Err(Error::Refused(r)) => r.code,
            Err(Error::InvalidArgument(_)) => Code::InvalidArgument,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn ask(account: Option<&str>, region: Option<&str>) -> Requested {
        Requested {
            account: account.map(str::to_owned),
            region: region.map(str::to_owned),
        }
    }

    #[test]
    fn metadata_keys_are_checked() {
        let mut metadata = MetadataMap::new();
        metadata.insert(ACCOUNT_KEY, MetadataValue::from_static("22222222222"));
        metadata.insert(REGION_KEY, MetadataValue::from_static("mars-1"));
        let Err(Error::InvalidArgument(v)) = requested(&metadata) else {
            panic!("malformed keys accepted");
        };
        let fields: Vec<&str> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, [ACCOUNT_KEY, REGION_KEY]);
        let mut twice = MetadataMap::new();
        twice.append(ACCOUNT_KEY, MetadataValue::from_static("111111111111"));
        twice.append(ACCOUNT_KEY, MetadataValue::from_static("222222222222"));
        assert!(requested(&twice).is_err());
        assert_eq!(
            requested(&MetadataMap::new()).unwrap(),
            Requested::default()
        );
    }

    #[test]
    fn targets_come_from_the_arn_then_the_metadata_then_the_defaults() {
        let a = accounts();
        let t = a.resolve(Requested::default(), &[]).unwrap();
        assert_eq!(t.to_string(), "111111111111/us-east-1");
        let t = a
            .resolve(ask(Some("222222222222"), Some("eu-west-1")), &[])
            .unwrap();
        assert_eq!(t.to_string(), "222222222222/eu-west-1");
        let arn = "arn:aws:cloudtrail:eu-west-1:222222222222:trail/t";
        assert_eq!(
            a.resolve(Requested::default(), &[arn.into()])
                .unwrap()
                .to_string(),
            "222222222222/eu-west-1"
        );
        assert_eq!(
            a.resolve(ask(Some("222222222222"), None), &["plain-name".into()])
                .unwrap()
                .to_string(),
            "222222222222/us-east-1"
        );
    }

    #[test]
    fn what_cannot_be_targeted_is_refused_with_its_code() {
        let a = accounts();
        let arn = "arn:aws:cloudtrail:eu-west-1:222222222222:trail/t";
        assert_eq!(
            code(a.resolve(ask(Some("111111111111"), None), &[arn.into()])),
            Code::InvalidArgument
        );
        assert_eq!(
            code(a.resolve(ask(None, Some("us-east-1")), &[arn.into()])),
            Code::InvalidArgument
        );
        assert_eq!(
            code(a.resolve(
                Requested::default(),
                &["arn:aws-cn:cloudtrail:cn-north-1:222222222222:trail/t".into()]
            )),
            Code::InvalidArgument
        );
        // Another partition in second place is refused too (it was sent upstream).
        let second = [
            arn.to_owned(),
            "arn:aws-cn:cloudtrail:eu-west-1:222222222222:trail/u".to_owned(),
        ];
        let refused = a.resolve(Requested::default(), &second).unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.to_string().contains("aws-cn"), "{refused}");
        assert_eq!(
            code(a.resolve(ask(Some("333333333333"), None), &[])),
            Code::NotFound
        );
        let two = [
            arn.to_owned(),
            "arn:aws:cloudtrail:us-east-1:222222222222:trail/u".to_owned(),
        ];
        assert_eq!(
            code(a.resolve(Requested::default(), &two)),
            Code::InvalidArgument
        );
        assert_eq!(
            code(a.resolve(ask(Some("111111111111"), Some("ap-south-1")), &[])),
            Code::FailedPrecondition
        );
    }

    #[test]
    fn without_accounts_the_upstreams_account_in_its_regions() {
        let config = AccountsConfig {
            regions: vec!["ap-south-1".into()],
            ..crate::config::Config::default().accounts
        };
        let a = Accounts::single(&config, "123456789012", "us-east-1");
        assert!(!a.is_configured());
        assert_eq!(a.default_target().to_string(), "123456789012/us-east-1");
        assert_eq!(
            a.resolve(ask(None, Some("ap-south-1")), &[])
                .unwrap()
                .to_string(),
            "123456789012/ap-south-1"
        );
        assert_eq!(
            code(a.resolve(ask(None, Some("eu-west-3")), &[])),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(a.resolve(ask(Some("111111111111"), None), &[])),
            Code::NotFound
        );
        assert_eq!(a.targets().len(), 2);
    }
}
