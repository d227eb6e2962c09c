//! Authorization: which roles may call which RPCs, and where.
//!
//! Built-in roles: `reader` (the read-only RPCs), `operator` (reader plus every change that can be
//! undone, i.e. all but DeleteTrail), `admin` (everything), each in any account and Region. Custom
//! roles list RPC names (`name = ["RPC", ...]`), optionally with a scope (`[roles.name] rpcs = [...],
//! accounts = [...], regions = [...]`); unknown names fail at start. A principal may have a scope of
//! its own too (its `[[tokens]]` or `[[certificates]]` entry): a call is allowed when one of the
//! principal's roles allows the RPC in the call's account and Region, and the principal's own scope
//! includes them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use crate::target::Scope;
use crate::{operation::Operation, target::Target};

/// A custom role as the `[roles]` table writes it: a list of RPCs, or a table with a scope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RoleEntry {
    Rpcs(Vec<String>),
    Scoped {
        rpcs: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        accounts: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        regions: Vec<String>,
        /// Streams a principal with this role may hold open at once (instead of
        /// `max_streams_per_principal`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_streams: Option<usize>,
    },
}

impl RoleEntry {
    pub fn rpcs(&self) -> &[String] {
        match self {
            RoleEntry::Rpcs(rpcs) | RoleEntry::Scoped { rpcs, .. } => rpcs,
        }
    }

    pub fn max_streams(&self) -> Option<usize> {
        match self {
            RoleEntry::Rpcs(_) => None,
            RoleEntry::Scoped { max_streams, .. } => *max_streams,
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            RoleEntry::Rpcs(_) => Scope::default(),
            RoleEntry::Scoped {
                accounts, regions, ..
            } => Scope::new(accounts, regions),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting `roles.{role}`: {}", self.reason())]
pub struct UnknownRpc {
    pub role: String,
    pub rpc: String,
}

impl UnknownRpc {
    /// What is wrong, without the key.
    pub fn reason(&self) -> String {
        let known: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
        format!("unknown RPC '{}' (known: {})", self.rpc, known.join(", "))
    }
}

/// What one role allows.
#[derive(Debug, Clone)]
struct Grant {
    operations: HashSet<Operation>,
    scope: Scope,
    max_streams: Option<usize>,
}

/// Role name → what it allows.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: HashMap<String, Grant>,
}

impl Policy {
    /// The built-in roles plus `custom` ones (which may also redefine a built-in name).
    pub fn new(custom: &BTreeMap<String, RoleEntry>) -> Result<Policy, UnknownRpc> {
        let all = Operation::ALL.iter().copied();
        let anywhere = |operations: HashSet<Operation>| Grant {
            operations,
            scope: Scope::default(),
            max_streams: None,
        };
        let mut roles: HashMap<String, Grant> = HashMap::new();
        roles.insert(
            "reader".into(),
            anywhere(all.clone().filter(|op| op.is_read_only()).collect()),
        );
        roles.insert(
            "operator".into(),
            anywhere(all.clone().filter(|op| !op.is_destructive()).collect()),
        );
        roles.insert("admin".into(), anywhere(all.collect()));
        for (role, entry) in custom {
            let operations = entry
                .rpcs()
                .iter()
                .map(|rpc| {
                    Operation::from_name(rpc).ok_or_else(|| UnknownRpc {
                        role: role.clone(),
                        rpc: rpc.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            roles.insert(
                role.clone(),
                Grant {
                    operations,
                    scope: entry.scope(),
                    max_streams: entry.max_streams(),
                },
            );
        }
        Ok(Policy { roles })
    }

    /// Whether any of `roles` allows `operation` somewhere (the check before the call's target is
    /// known).
    pub fn allows(&self, roles: &[String], operation: Operation) -> bool {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .any(|grant| grant.operations.contains(&operation))
    }

    /// Whether any of `roles` allows `operation` at `target`.
    pub fn allows_at(&self, roles: &[String], operation: Operation, target: &Target) -> bool {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .any(|grant| grant.operations.contains(&operation) && grant.scope.includes(target))
    }

    /// The most streams any of `roles` lets a principal hold open, if one of them says.
    pub fn max_streams(&self, roles: &[String]) -> Option<usize> {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r)?.max_streams)
            .max()
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Every role's name, sorted.
    pub fn role_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.roles.keys().map(String::as_str).collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    #[test]
    fn built_in_roles() {
        let policy = Policy::new(&BTreeMap::new()).unwrap();
        let can = |role: &str, op| policy.allows(&[role.to_owned()], op);
        assert!(can("reader", LookupEvents) && !can("reader", StartLogging));
        assert!(can("operator", CreateTrail) && !can("operator", DeleteTrail));
        assert!(Operation::ALL.iter().all(|&op| can("admin", op)));
        assert!(!can("nobody", DescribeTrails));
        let reader: Vec<&str> = Operation::ALL
            .iter()
            .filter(|&&op| can("reader", op))
            .map(|op| op.name())
            .collect();
        assert_eq!(
            reader,
            [
                "DescribeTrails",
                "GetEventSelectors",
                "GetEventStoreStatus",
                "GetInsightSelectors",
                "GetTrail",
                "GetTrailStatus",
                "ListPublicKeys",
                "ListTags",
                "ListTrails",
                "LookupEvents",
                "StreamEvents"
            ]
        );
        assert_eq!(policy.role_names(), ["admin", "operator", "reader"]);
    }

    #[test]
    fn scoped_roles_allow_only_in_their_scope() {
        let mut custom = BTreeMap::new();
        custom.insert(
            "eu-writer".to_owned(),
            RoleEntry::Scoped {
                rpcs: vec!["CreateTrail".into()],
                accounts: vec!["111111111111".into()],
                regions: vec!["eu-west-1".into()],
                max_streams: Some(5),
            },
        );
        let policy = Policy::new(&custom).unwrap();
        let at = |account: &str, region: &str| Target {
            account: account.into(),
            region: region.into(),
        };
        let roles = ["eu-writer".to_owned()];
        assert!(policy.allows(&roles, CreateTrail));
        assert!(policy.allows_at(&roles, CreateTrail, &at("111111111111", "eu-west-1")));
        assert!(!policy.allows_at(&roles, CreateTrail, &at("111111111111", "us-east-1")));
        assert!(!policy.allows_at(&roles, CreateTrail, &at("222222222222", "eu-west-1")));
        assert!(policy.allows_at(
            &["reader".into()],
            LookupEvents,
            &at("222222222222", "ap-south-1")
        ));
        let team = Scope::new(&["111111111111".into()], &[]);
        assert!(team.includes(&at("111111111111", "ap-south-1")));
        assert!(!team.includes(&at("222222222222", "us-east-1")));
        assert!(Scope::default().is_unlimited());
        let parsed: BTreeMap<String, RoleEntry> = toml::from_str(
            "plain = [\"LookupEvents\"]\n[scoped]\nrpcs = [\"LookupEvents\"]\naccounts = [\"111111111111\"]\n",
        )
        .unwrap();
        assert_eq!(parsed["plain"].scope(), Scope::default());
        assert_eq!(parsed["scoped"].scope().accounts, ["111111111111"]);
        assert_eq!(policy.max_streams(&roles), Some(5));
        assert_eq!(policy.max_streams(&["reader".into()]), None);
    }

    #[test]
    fn custom_roles_are_checked() {
        let mut custom = BTreeMap::new();
        custom.insert(
            "auditor".to_owned(),
            RoleEntry::Rpcs(vec!["LookupEvents".to_owned()]),
        );
        let policy = Policy::new(&custom).unwrap();
        assert!(policy.allows(&["auditor".into()], LookupEvents));
        assert!(!policy.allows(&["auditor".into()], DescribeTrails));
        assert!(policy.has_role("auditor") && !policy.has_role("reeder"));
        custom.insert(
            "typo".to_owned(),
            RoleEntry::Rpcs(vec!["LookupEvent".to_owned()]),
        );
        let err = Policy::new(&custom).unwrap_err().to_string();
        assert!(
            err.contains("roles.typo") && err.contains("LookupEvent'"),
            "{err}"
        );
    }
}
