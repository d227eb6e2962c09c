//! CloudTrail's API quotas, enforced as AWS does: per account and Region, per group of operations;
//! beyond the quota a call is answered ThrottlingException (HTTP 400) and does nothing.

use std::{collections::HashMap, time::Duration};

use tokio::time::Instant;

/// The groups CloudTrail's quotas are documented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaGroup {
    /// LookupEvents.
    Lookup,
    /// Describe*, Get*, List*.
    Read,
    /// Every other operation.
    Write,
}

/// Calls per second per account and Region, for each group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    pub lookup: f64,
    pub read: f64,
    pub write: f64,
}

impl Quotas {
    /// What AWS documents (not raisable): LookupEvents 2/s, reads 10/s, everything else 1/s.
    pub const AWS: Quotas = Quotas {
        lookup: 2.0,
        read: 10.0,
        write: 1.0,
    };

    fn per_second(&self, group: QuotaGroup) -> f64 {
        match group {
            QuotaGroup::Lookup => self.lookup,
            QuotaGroup::Read => self.read,
            QuotaGroup::Write => self.write,
        }
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::AWS
    }
}

/// Calls arriving this much early still pass: AWS's throttling is not exact either, and a client's
/// own pacing reaches the server with scheduling jitter.
const TOLERANCE: Duration = Duration::from_millis(50);

/// The buckets of every account and Region seen so far: for each group, the earliest time the next
/// call may come. Looked up by `&str`, so a call copies no names.
#[derive(Debug)]
pub struct Limiter {
    quotas: Quotas,
    next: HashMap<String, HashMap<String, [Option<Instant>; 3]>>,
}

impl Limiter {
    pub fn new(quotas: Quotas) -> Limiter {
        Limiter {
            quotas,
            next: HashMap::new(),
        }
    }

    /// Whether a call of `group` from `account` in `region` may go ahead now (and counts it if so).
    pub fn admit(&mut self, account: &str, region: &str, group: QuotaGroup) -> bool {
        let now = Instant::now();
        if !self.next.contains_key(account) {
            self.next.insert(account.to_owned(), HashMap::new());
        }
        let Some(regions) = self.next.get_mut(account) else {
            return true; // inserted above
        };
        if !regions.contains_key(region) {
            regions.insert(region.to_owned(), [None; 3]);
        }
        let Some(slots) = regions.get_mut(region) else {
            return true; // inserted above
        };
        let slot = &mut slots[group as usize];
        let next = slot.unwrap_or(now);
        if now + TOLERANCE < next {
            return false;
        }
        let spacing = Duration::from_secs_f64(1.0 / self.quotas.per_second(group).max(1e-6));
        *slot = Some(next.max(now) + spacing);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_account_region_and_group_has_its_own_quota() {
        let mut limiter = Limiter::new(Quotas::AWS);
        assert!(limiter.admit("111111111111", "us-east-1", QuotaGroup::Write));
        assert!(!limiter.admit("111111111111", "us-east-1", QuotaGroup::Write));
        assert!(limiter.admit("111111111111", "eu-west-1", QuotaGroup::Write));
        assert!(limiter.admit("222222222222", "us-east-1", QuotaGroup::Write));
        assert!(limiter.admit("111111111111", "us-east-1", QuotaGroup::Read));
        tokio::time::advance(Duration::from_millis(960)).await;
        assert!(
            limiter.admit("111111111111", "us-east-1", QuotaGroup::Write),
            "within tolerance"
        );
        assert!(!limiter.admit("111111111111", "us-east-1", QuotaGroup::Write));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_quota_banks_nothing() {
        let mut limiter = Limiter::new(Quotas::AWS);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(limiter.admit("a", "r", QuotaGroup::Lookup));
        assert!(!limiter.admit("a", "r", QuotaGroup::Lookup));
    }
}
