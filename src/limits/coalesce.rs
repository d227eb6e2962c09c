//! Identical concurrent requests share one upstream call; identical requests within a TTL are served
//! from cache. Used for LookupEvents, whose quota is the scarce one. All lookups are account-wide, so
//! sharing answers between callers of the one upstream account exposes nothing new.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tonic::Status;

use super::lock;

/// What a shared call ended with. A follower retries by itself when the leader's failure was the
/// leader's own (its deadline left no slot), since the follower's deadline may allow one.
#[derive(Debug, Clone)]
pub enum Shared<V> {
    Done(Result<V, Status>),
    LeaderOnly(Status),
}

type Slot<V> = watch::Receiver<Option<Shared<V>>>;

#[derive(Debug)]
struct State<K, V> {
    cache: HashMap<K, (Instant, V)>,
    in_flight: HashMap<K, Slot<V>>,
}

/// How a value was obtained (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upstream,
    Coalesced,
    Cache,
}

#[derive(Debug)]
pub struct Coalescer<K, V> {
    ttl: Duration,
    state: Mutex<State<K, V>>,
}

/// Removes the in-flight entry if the leader goes away (cancelled) before publishing.
struct Lead<'a, K: Eq + Hash, V> {
    owner: &'a Coalescer<K, V>,
    key: Option<K>,
}

impl<K: Eq + Hash, V> Drop for Lead<'_, K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.owner.state).in_flight.remove(&key);
        }
    }
}

/// Bounds the cache: beyond this many entries, expired ones are dropped on insert.
const CACHE_SWEEP_AT: usize = 1024;

impl<K: Eq + Hash + Clone, V: Clone> Coalescer<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Coalescer {
            ttl,
            state: Mutex::new(State {
                cache: HashMap::new(),
                in_flight: HashMap::new(),
            }),
        }
    }

    /// The value for `key`: cached, shared with an identical call in flight, or fetched.
    pub async fn get<F, Fut>(
        &self,
        key: K,
        wait: Option<Duration>,
        fetch: F,
    ) -> (Result<V, Status>, Source)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Shared<V>>,
    {
        let mut fetch = Some(fetch);
        loop {
            let follow = {
                let state = lock(&self.state);
                if let Some((at, value)) = state.cache.get(&key)
                    && at.elapsed() < self.ttl
                {
                    return (Ok(value.clone()), Source::Cache);
                }
                state.in_flight.get(&key).cloned()
            };
            let Some(mut slot) = follow else {
                let Some(fetch) = fetch.take() else {
                    return (
                        Err(Status::internal("coalescer: fetched twice")),
                        Source::Upstream,
                    );
                };
                return (self.lead(key, fetch).await, Source::Upstream);
            };
            let shared = async {
                slot.wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|v| v.clone())
            };
            let outcome = match wait {
                Some(limit) => match tokio::time::timeout(limit, shared).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        let status = Status::deadline_exceeded(
                            "the shared CloudTrail call did not finish in time",
                        );
                        return (Err(status), Source::Coalesced);
                    }
                },
                None => shared.await,
            };
            match outcome {
                Some(Shared::Done(result)) => return (result, Source::Coalesced),
                // The leader left, or failed for its own reasons: try again (maybe as leader).
                Some(Shared::LeaderOnly(_)) | None => {
                    if fetch.is_none() {
                        return (
                            Err(Status::internal("coalescer: no fetch left")),
                            Source::Coalesced,
                        );
                    }
                }
            }
        }
    }

    async fn lead<F, Fut>(&self, key: K, fetch: F) -> Result<V, Status>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Shared<V>>,
    {
        let (publish, slot) = watch::channel(None);
        lock(&self.state).in_flight.insert(key.clone(), slot);
        let mut lead = Lead {
            owner: self,
            key: Some(key),
        };
        let shared = fetch().await;
        let result = match &shared {
            Shared::Done(result) => result.clone(),
            Shared::LeaderOnly(status) => Err(status.clone()),
        };
        {
            let mut state = lock(&self.state);
            if let Some(key) = lead.key.take() {
                state.in_flight.remove(&key);
                if let (Ok(value), false) = (&result, self.ttl.is_zero()) {
                    if state.cache.len() >= CACHE_SWEEP_AT {
                        let ttl = self.ttl;
                        state.cache.retain(|_, (at, _)| at.elapsed() < ttl);
                    }
                    state.cache.insert(key, (Instant::now(), value.clone()));
                }
            }
        }
        let _ = publish.send(Some(shared));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    #[tokio::test]
    async fn identical_concurrent_calls_share_one_fetch() {
        let c = Arc::new(Coalescer::<u32, u32>::new(Duration::ZERO));
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (c, fetches) = (c.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                c.get(7, None, || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Shared::Done(Ok(42))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().0.unwrap(), 42);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn cache_serves_within_the_ttl_only() {
        let c = Coalescer::<u32, u32>::new(Duration::from_millis(100));
        let (v, source) = c.get(1, None, || async { Shared::Done(Ok(1)) }).await;
        assert_eq!((v.unwrap(), source), (1, Source::Upstream));
        let (v, source) = c.get(1, None, || async { Shared::Done(Ok(2)) }).await;
        assert_eq!((v.unwrap(), source), (1, Source::Cache));
        tokio::time::sleep(Duration::from_millis(120)).await;
        let (v, _) = c.get(1, None, || async { Shared::Done(Ok(3)) }).await;
        assert_eq!(v.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_leaders_own_refusal_is_not_shared() {
        let c = Arc::new(Coalescer::<u32, u32>::new(Duration::ZERO));
        let leader = {
            let c = c.clone();
            tokio::spawn(async move {
                c.get(1, None, || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Shared::LeaderOnly(Status::resource_exhausted("no slot for the leader"))
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (follower, _) = c.get(1, None, || async { Shared::Done(Ok(9)) }).await;
        assert_eq!(follower.unwrap(), 9, "the follower fetched for itself");
        assert!(leader.await.unwrap().0.is_err());
    }
}
