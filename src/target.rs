//! Where a call goes (`Target`: an account and a Region) and where a caller may go (`Scope`). A leaf:
//! routing (`accounts`), authorization (`auth`), the limiter, telemetry and the caller all speak of
//! targets, so the type lives below all of them.

use std::sync::Arc;

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub account: Arc<str>,
    pub region: Arc<str>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// Where calls may go: accounts and Regions, each list empty for "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

impl Scope {
    pub fn new(accounts: &[String], regions: &[String]) -> Scope {
        Scope {
            accounts: accounts.to_vec(),
            regions: regions.to_vec(),
        }
    }

    pub fn includes(&self, target: &Target) -> bool {
        (self.accounts.is_empty() || self.accounts.iter().any(|a| **a == *target.account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| **r == *target.region))
    }

    pub fn is_unlimited(&self) -> bool {
        self.accounts.is_empty() && self.regions.is_empty()
    }
}
