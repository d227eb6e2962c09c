//! Identical concurrent requests share one upstream call; identical requests within a TTL are served
//! from cache. Used for LookupEvents, whose quota is the scarce one. moka's `try_get_with` does the
//! coalescing (one initialiser per key, its result handed to every waiter) and the expiry; this adds
//! what is ours: a waiter's own deadline, and not sharing a failure that was only the leader's.

use std::{future::Future, hash::Hash, time::Duration};

use tonic::Status;

/// What a shared call ended with. A follower retries by itself when the leader's failure was the
/// leader's own (its deadline left no slot), since the follower's deadline may allow one.
#[derive(Debug, Clone)]
pub enum Shared<V> {
    Done(Result<V, Status>),
    LeaderOnly(Status),
}

/// How a value was obtained (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upstream,
    Coalesced,
    Cache,
}

impl Source {
    /// The `source` label of `cloudtrail_gateway_lookup_events_total`.
    pub fn label(self) -> &'static str {
        match self {
            Source::Upstream => "upstream",
            Source::Coalesced => "coalesced",
            Source::Cache => "cache",
        }
    }
}

/// A failed fetch, as waiters see it.
#[derive(Debug)]
struct Failure {
    status: Status,
    leader_only: bool,
}

/// Entries kept at most (the least recently used go first).
const CAPACITY: u64 = 1024;

pub struct Coalescer<K, V> {
    cache: moka::future::Cache<K, V>,
    ttl: Duration,
}

impl<K, V> std::fmt::Debug for Coalescer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration) -> Self {
        let mut cache = moka::future::Cache::builder().max_capacity(CAPACITY);
        if !ttl.is_zero() {
            cache = cache.time_to_live(ttl);
        }
        Coalescer {
            cache: cache.build(),
            ttl,
        }
    }

    /// The value for `key`: cached, shared with an identical call in flight, or fetched. A caller
    /// waits for a shared call at most `wait`.
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
        if let Some(value) = self.cache.get(&key).await {
            return (Ok(value), Source::Cache);
        }
        // A miss is a large future (moka's shared initialisation around the fetch): boxed, so a hit
        // (and the future of every call that holds this one) stays small.
        Box::pin(self.shared(key, wait, fetch)).await
    }

    /// A miss: `fetch` made once for every caller of `key` at that moment (by the first of them).
    async fn shared<F, Fut>(
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
            let mut led = false;
            let attempt = self.cache.try_get_with(key.clone(), async {
                led = true;
                let Some(fetch) = fetch.take() else {
                    return Err(Failure {
                        status: Status::internal("coalescer: fetched twice"),
                        leader_only: false,
                    });
                };
                match fetch().await {
                    Shared::Done(Ok(value)) => Ok(value),
                    Shared::Done(Err(status)) => Err(Failure {
                        status,
                        leader_only: false,
                    }),
                    Shared::LeaderOnly(status) => Err(Failure {
                        status,
                        leader_only: true,
                    }),
                }
            });
            let outcome = match wait {
                Some(limit) => match tokio::time::timeout(limit, attempt).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        let status = Status::deadline_exceeded(
                            "the shared CloudTrail call did not finish in time",
                        );
                        return (Err(status), Source::Coalesced);
                    }
                },
                None => attempt.await,
            };
            let source = if led {
                Source::Upstream
            } else {
                Source::Coalesced
            };
            match outcome {
                Ok(value) => {
                    if self.ttl.is_zero() && led {
                        // No cache: the value served the calls that waited for it, and no later one.
                        self.cache.invalidate(&key).await;
                    }
                    return (Ok(value), source);
                }
                // The leader failed for its own reasons: try again (maybe as the leader).
                Err(failure) if failure.leader_only && !led && fetch.is_some() => continue,
                Err(failure) => return (Err(failure.status.clone()), source),
            }
        }
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
        // No TTL: the next call fetches again.
        let (v, source) = c.get(7, None, || async { Shared::Done(Ok(43)) }).await;
        assert_eq!((v.unwrap(), source), (43, Source::Upstream));
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

    #[tokio::test]
    async fn failures_are_shared_but_not_cached() {
        let c = Arc::new(Coalescer::<u32, u32>::new(Duration::from_secs(60)));
        let (v, _) = c
            .get(1, None, || async {
                Shared::Done(Err(Status::not_found("x")))
            })
            .await;
        assert_eq!(v.unwrap_err().code(), tonic::Code::NotFound);
        let (v, source) = c.get(1, None, || async { Shared::Done(Ok(5)) }).await;
        assert_eq!((v.unwrap(), source), (5, Source::Upstream));
    }

    #[tokio::test]
    async fn a_follower_waits_no_longer_than_its_deadline() {
        let c = Arc::new(Coalescer::<u32, u32>::new(Duration::ZERO));
        let leader = {
            let c = c.clone();
            tokio::spawn(async move {
                c.get(1, None, || async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Shared::Done(Ok(1))
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (follower, source) = c
            .get(1, Some(Duration::from_millis(50)), || async {
                Shared::Done(Ok(2))
            })
            .await;
        assert_eq!(follower.unwrap_err().code(), tonic::Code::DeadlineExceeded);
        assert_eq!(source, Source::Coalesced);
        assert_eq!(leader.await.unwrap().0.unwrap(), 1);
    }
}
