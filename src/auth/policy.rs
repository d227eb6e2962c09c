//! Authorization: which roles may call which RPCs.
//!
//! Built-in roles: `reader` (the read-only RPCs), `operator` (reader plus every change except
//! DeleteTrail), `admin` (everything). Custom roles list RPC names; unknown names fail at start.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Every RPC of CloudTrailService: one per CloudTrail operation.
pub const ALL_RPCS: [&str; 14] = crate::OPERATIONS;

const READER: [&str; 6] = [
    "DescribeTrails",
    "GetTrailStatus",
    "GetEventSelectors",
    "ListTags",
    "ListPublicKeys",
    "LookupEvents",
];

const OPERATOR_EXTRA: [&str; 7] = [
    "StartLogging",
    "StopLogging",
    "AddTags",
    "RemoveTags",
    "PutEventSelectors",
    "UpdateTrail",
    "CreateTrail",
];

#[derive(Debug, thiserror::Error)]
#[error("invalid setting `roles.{role}`: unknown RPC '{rpc}' (known: {})", ALL_RPCS.join(", "))]
pub struct UnknownRpc {
    pub role: String,
    pub rpc: String,
}

/// Role name → the RPCs it allows.
#[derive(Debug, Clone)]
pub struct Policy {
    roles: HashMap<String, HashSet<&'static str>>,
}

impl Policy {
    /// The built-in roles plus `custom` ones (which may also redefine a built-in name).
    pub fn new(custom: &BTreeMap<String, Vec<String>>) -> Result<Policy, UnknownRpc> {
        let mut roles: HashMap<String, HashSet<&'static str>> = HashMap::new();
        roles.insert("reader".into(), READER.into_iter().collect());
        roles.insert(
            "operator".into(),
            READER.into_iter().chain(OPERATOR_EXTRA).collect(),
        );
        roles.insert("admin".into(), ALL_RPCS.into_iter().collect());
        for (role, rpcs) in custom {
            let mut allowed = HashSet::new();
            for rpc in rpcs {
                let known = ALL_RPCS
                    .iter()
                    .find(|r| **r == rpc)
                    .ok_or_else(|| UnknownRpc {
                        role: role.clone(),
                        rpc: rpc.clone(),
                    })?;
                allowed.insert(*known);
            }
            roles.insert(role.clone(), allowed);
        }
        Ok(Policy { roles })
    }

    /// Whether any of `roles` allows `rpc`.
    pub fn allows(&self, roles: &[String], rpc: &str) -> bool {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .any(|allowed| allowed.contains(rpc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_roles() {
        let policy = Policy::new(&BTreeMap::new()).unwrap();
        let can = |role: &str, rpc: &str| policy.allows(&[role.to_owned()], rpc);
        assert!(can("reader", "LookupEvents") && !can("reader", "StartLogging"));
        assert!(can("operator", "CreateTrail") && !can("operator", "DeleteTrail"));
        assert!(ALL_RPCS.iter().all(|rpc| can("admin", rpc)));
        assert!(!can("nobody", "DescribeTrails"));
    }

    #[test]
    fn custom_roles_are_checked() {
        let mut custom = BTreeMap::new();
        custom.insert("auditor".to_owned(), vec!["LookupEvents".to_owned()]);
        let policy = Policy::new(&custom).unwrap();
        assert!(policy.allows(&["auditor".into()], "LookupEvents"));
        assert!(!policy.allows(&["auditor".into()], "DescribeTrails"));
        custom.insert("typo".to_owned(), vec!["LookupEvent".to_owned()]);
        let err = Policy::new(&custom).unwrap_err().to_string();
        assert!(
            err.contains("roles.typo") && err.contains("LookupEvent'"),
            "{err}"
        );
    }
}
