//! Authorization: which roles may call which RPCs.
//!
//! Built-in roles: `reader` (the read-only RPCs), `operator` (reader plus every change that can be
//! undone, i.e. all but DeleteTrail), `admin` (everything). Custom roles list RPC names; unknown
//! names fail at start.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::operation::Operation;

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

/// Role name → the RPCs it allows.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: HashMap<String, HashSet<Operation>>,
}

impl Policy {
    /// The built-in roles plus `custom` ones (which may also redefine a built-in name).
    pub fn new(custom: &BTreeMap<String, Vec<String>>) -> Result<Policy, UnknownRpc> {
        let all = Operation::ALL.iter().copied();
        let mut roles: HashMap<String, HashSet<Operation>> = HashMap::new();
        roles.insert(
            "reader".into(),
            all.clone().filter(|op| op.is_read_only()).collect(),
        );
        roles.insert(
            "operator".into(),
            all.clone().filter(|op| !op.is_destructive()).collect(),
        );
        roles.insert("admin".into(), all.collect());
        for (role, rpcs) in custom {
            let allowed = rpcs
                .iter()
                .map(|rpc| {
                    Operation::from_name(rpc).ok_or_else(|| UnknownRpc {
                        role: role.clone(),
                        rpc: rpc.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            roles.insert(role.clone(), allowed);
        }
        Ok(Policy { roles })
    }

    /// Whether any of `roles` allows `operation`.
    pub fn allows(&self, roles: &[String], operation: Operation) -> bool {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .any(|allowed| allowed.contains(&operation))
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
                "GetTrailStatus",
                "ListPublicKeys",
                "ListTags",
                "LookupEvents"
            ]
        );
        assert_eq!(policy.role_names(), ["admin", "operator", "reader"]);
    }

    #[test]
    fn custom_roles_are_checked() {
        let mut custom = BTreeMap::new();
        custom.insert("auditor".to_owned(), vec!["LookupEvents".to_owned()]);
        let policy = Policy::new(&custom).unwrap();
        assert!(policy.allows(&["auditor".into()], LookupEvents));
        assert!(!policy.allows(&["auditor".into()], DescribeTrails));
        assert!(policy.has_role("auditor") && !policy.has_role("reeder"));
        custom.insert("typo".to_owned(), vec!["LookupEvent".to_owned()]);
        let err = Policy::new(&custom).unwrap_err().to_string();
        assert!(
            err.contains("roles.typo") && err.contains("LookupEvent'"),
            "{err}"
        );
    }
}
