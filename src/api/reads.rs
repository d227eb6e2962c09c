//! Reads for pollers: DescribeTrails, GetTrail, GetTrailStatus, GetEventSelectors,
//! GetInsightSelectors and ListTags are coalesced (identical concurrent calls make one upstream call)
//! and their answers kept for `read_cache_ttl` (0s: off). A change made through the gateway drops the cached
//! reads of its account at once (every Region: a multi-Region trail shows in all of them), so a read
//! after one's own write is never stale. One cache for every RPC: the key names the RPC, and its
//! answer is kept as the RPC's response type.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    limits::coalesce::{Coalescer, Shared, Source},
    operation::Operation,
    target::Target,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadKey {
    target: Target,
    operation: Operation,
    /// The account's generation: bumped by each change, so older answers are never found again.
    generation: u64,
    request: Vec<u8>,
}

/// An answer, of the response type of the key's RPC.
pub type Kept = Arc<dyn Any + Send + Sync>;

#[derive(Debug)]
pub struct Reads {
    coalescer: Coalescer<ReadKey, Kept>,
    generations: Mutex<HashMap<Arc<str>, u64>>,
    /// Off (a zero TTL): every read goes upstream.
    on: bool,
}

impl Reads {
    pub fn new(ttl: Duration) -> Reads {
        Reads {
            coalescer: Coalescer::new(ttl),
            generations: Mutex::new(HashMap::new()),
            on: !ttl.is_zero(),
        }
    }

    /// Whether `operation`'s answers are shared and kept (`Operation`'s table says which).
    pub fn caches(&self, operation: Operation) -> bool {
        self.on && operation.is_cached()
    }

    fn generation(&self, account: &str) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        generations.get(account).copied().unwrap_or(0)
    }

    /// Drops every cached read of `account` (a change was made there).
    pub fn changed(&self, account: &Arc<str>) {
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        *generations.entry(account.clone()).or_insert(0) += 1;
    }

    pub fn key(&self, target: &Target, operation: Operation, request: Vec<u8>) -> ReadKey {
        ReadKey {
            generation: self.generation(&target.account),
            target: target.clone(),
            operation,
            request,
        }
    }

    /// The answer for `key`: cached, shared, or fetched.
    pub async fn get<F, Fut>(
        &self,
        key: ReadKey,
        wait: Option<Duration>,
        fetch: F,
    ) -> (Result<Kept, tonic::Status>, Source)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Shared<Kept>>,
    {
        self.coalescer.get(key, wait, fetch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_drops_the_accounts_cached_reads() {
        let reads = Reads::new(Duration::from_secs(60));
        let target = |region: &str| Target {
            account: "111111111111".into(),
            region: region.into(),
        };
        let answer = |text: &'static str| async move {
            let kept: Kept = Arc::new(text);
            Shared::Done(Ok(kept))
        };
        let text =
            |kept: Result<Kept, tonic::Status>| *kept.unwrap().downcast_ref::<&str>().unwrap();
        let key = reads.key(&target("us-east-1"), Operation::GetTrail, b"t".to_vec());
        let (first, source) = reads.get(key.clone(), None, || answer("one")).await;
        assert_eq!((text(first), source), ("one", Source::Upstream));
        let (again, source) = reads.get(key, None, || answer("two")).await;
        assert_eq!((text(again), source), ("one", Source::Cache));
        // A change in the account (any Region) and the next read is fresh, in every Region.
        reads.changed(&"111111111111".into());
        let key = reads.key(&target("us-east-1"), Operation::GetTrail, b"t".to_vec());
        let (fresh, source) = reads.get(key, None, || answer("three")).await;
        assert_eq!((text(fresh), source), ("three", Source::Upstream));
        assert!(reads.caches(Operation::GetTrailStatus) && !reads.caches(Operation::LookupEvents));
        assert!(
            !Reads::new(Duration::ZERO).caches(Operation::GetTrailStatus),
            "0s: off"
        );
    }
}
