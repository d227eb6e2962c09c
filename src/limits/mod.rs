//! Rate limits that keep the gateway under CloudTrail's quotas, per (account, Region, operation class):
//! LookupEvents (default 1/s), reads (Describe/Get/List, 10/s) and writes (everything else, 1/s).
//! Each (account, Region, class) has its own bucket, waiters and dispatcher, made on its first call:
//! one account spending its quota does not delay another's calls.
//!
//! A call takes a slot before it goes upstream. It waits for its slot if that comes before the
//! caller's deadline and `max_wait`; otherwise it is refused at once with RetryInfo and QuotaFailure.
//! Waiters are served in order of a per-principal virtual time (round-robin between principals, or
//! weighted, or plain FIFO), so one busy caller cannot take every slot. Slots come from a local GCRA
//! or, with `redis_url`, from an atomic GCRA in Redis shared by all replicas (`shared.rs`).
//!
//! Why not a tower layer: LookupEvents answers are coalesced and cached (`coalesce.rs`), and a call
//! served that way must not spend a slot; only the API knows the request's fields. So the API's
//! `upstream` takes the slot right before the SDK call.

pub mod coalesce;
pub mod gcra;
mod queue;
pub mod shared;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use tokio::time::Instant;

use gcra::Gcra;
pub use queue::Fairness;
use queue::Queue;

use crate::{
    locks::{lock, read, write},
    operation::QuotaClass as Class,
    target::Target,
};

/// Calls per second for each class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    pub lookup: f64,
    pub read: f64,
    pub write: f64,
}

impl Quotas {
    pub fn rate(&self, class: Class) -> f64 {
        match class {
            Class::Lookup => self.lookup,
            Class::Read => self.read,
            Class::Write => self.write,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub quotas: Quotas,
    /// The longest a call waits for its slot, whatever its deadline.
    pub max_wait: Duration,
    /// The longest a call that set no deadline waits for its slot.
    pub max_wait_without_deadline: Duration,
    pub fairness: Fairness,
    /// Per-principal weights for round-robin (default 1), by qualified key (`Principal::key`) or,
    /// for a token's or certificate's principal, by its plain name.
    pub weights: BTreeMap<String, u32>,
    /// Shared slots across replicas.
    pub redis_url: Option<String>,
    /// The CA (PEM) a `rediss://` Redis's certificate chains to, when not a public one.
    pub redis_ca: Option<Vec<u8>>,
    /// With Redis away, each replica falls back to quota / expected_replicas.
    pub expected_replicas: u32,
}

impl LimitsConfig {
    /// The weight of the caller keyed `principal` (a `Principal::key`, or the gateway's own queue
    /// name). A plain name in `[weights]` is a configured principal's (token or certificate), never
    /// a JWT's: an identity provider cannot hand out the weight the operator gave someone else.
    pub fn weight_of(&self, principal: &str) -> u32 {
        let configured = ["token:", "certificate:"]
            .iter()
            .find_map(|source| principal.strip_prefix(source));
        self.weights
            .get(principal)
            .or_else(|| configured.and_then(|name| self.weights.get(name)))
            .copied()
            .unwrap_or(1)
            .max(1)
    }
}

pub use crate::error::Refusal;

/// Where slots come from: this process, or Redis shared with the other replicas.
#[derive(Debug)]
enum Slots {
    Local(Mutex<Gcra>),
    Redis(shared::RedisSlots),
}

impl Slots {
    async fn try_take(&self) -> Result<(), Duration> {
        match self {
            Slots::Local(gcra) => lock(gcra).try_take(Instant::now()),
            Slots::Redis(redis) => redis.try_take().await,
        }
    }

    /// A hint of how long until the next slot (local only; Redis is asked when it matters).
    fn wait_hint(&self) -> Duration {
        match self {
            Slots::Local(gcra) => lock(gcra).wait(Instant::now()),
            Slots::Redis(_) => Duration::ZERO,
        }
    }
}

/// One bucket's slots and waiters: a class of calls to one account and Region.
#[derive(Debug)]
struct ClassLimiter {
    rate: f64,
    interval: Duration,
    slots: Slots,
    queue: Mutex<Queue>,
    /// `<account>/<region>`, for refusals.
    subject: String,
}

/// The three classes' buckets of one account and Region.
type TargetLimiter = [Arc<ClassLimiter>; 3];

#[derive(Debug)]
pub struct Limiter {
    /// Made on a target's first call; targets are the configured ones (calls elsewhere are refused
    /// before they get here), so the map stays bounded.
    targets: RwLock<HashMap<Target, Arc<TargetLimiter>>>,
    redis: Option<shared::Redis>,
    config: LimitsConfig,
}

impl Limiter {
    /// The limiter, its slots from `redis` when given (the server connects once and gives the same
    /// Redis to the idempotency store), else from this process.
    pub fn new(config: LimitsConfig, redis: Option<shared::Redis>) -> Limiter {
        for class in Class::ALL {
            let label = class.label();
            metrics::counter!(crate::telemetry::LIMITER_WAITS, "class" => label).increment(0);
            metrics::counter!(crate::telemetry::LIMITER_REJECTIONS, "class" => label).increment(0);
            let _ = metrics::histogram!(crate::telemetry::LIMITER_WAIT_SECONDS, "class" => label);
        }
        metrics::gauge!(crate::telemetry::LIMITER_REDIS_FALLBACK).increment(0.0);
        Limiter {
            targets: RwLock::new(HashMap::new()),
            redis,
            config,
        }
    }

    /// The buckets of `target`, made on its first call.
    fn target(&self, target: &Target) -> Arc<TargetLimiter> {
        if let Some(limiter) = read(&self.targets).get(target) {
            return limiter.clone();
        }
        let mut targets = write(&self.targets);
        targets
            .entry(target.clone())
            .or_insert_with(|| Arc::new(Class::ALL.map(|class| self.bucket(target, class))))
            .clone()
    }

    fn bucket(&self, target: &Target, class: Class) -> Arc<ClassLimiter> {
        let config = &self.config;
        let rate = config.quotas.rate(class);
        let slots = match &self.redis {
            None => Slots::Local(Mutex::new(Gcra::new(rate))),
            Some(redis) => Slots::Redis(shared::RedisSlots::new(
                redis.clone(),
                // A hash tag keeps one account's keys on one cluster slot.
                format!(
                    "cloudtrail-gateway:{{{}:{}}}:{}",
                    target.account,
                    target.region,
                    class.label()
                ),
                rate,
                rate / f64::from(config.expected_replicas.max(1)),
                config.max_wait,
            )),
        };
        Arc::new(ClassLimiter {
            rate,
            interval: gcra::interval_of(rate),
            slots,
            queue: Mutex::new(Queue::default()),
            subject: target.to_string(),
        })
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Whether any class takes its slots from the local fallback (Redis unreachable or not believed).
    pub fn in_fallback(&self) -> bool {
        read(&self.targets)
            .values()
            .flat_map(|t| t.iter())
            .any(|c| match &c.slots {
                Slots::Redis(redis) => redis.in_fallback(),
                Slots::Local(_) => false,
            })
    }

    /// Waits for a slot of `class` at `target` for `principal`, within `deadline` (and
    /// `max_wait`).
    pub async fn acquire(
        &self,
        target: &Target,
        class: Class,
        principal: &str,
        deadline: Option<Duration>,
    ) -> Result<(), Refusal> {
        let buckets = self.target(target);
        let limiter = &buckets[class as usize];
        let budget = deadline.map_or(self.config.max_wait, |d| d.min(self.config.max_wait));
        // Fast path: nobody waiting, and a slot is free now.
        let queue_empty = lock(&limiter.queue).waiters.is_empty();
        let first_wait = if queue_empty {
            match limiter.slots.try_take().await {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            }
        } else {
            limiter.slots.wait_hint()
        };
        let weight = self.config.weight_of(principal);
        let (key, position, receiver) =
            lock(&limiter.queue).enqueue(principal, weight, self.config.fairness);
        let estimate = first_wait + limiter.interval * position;
        let refuse = |retry_after: Duration| Refusal {
            class: class.describe(),
            rate: limiter.rate,
            subject: limiter.subject.clone(),
            retry_after,
            within: Refusal::DEADLINE,
        };
        let label = class.label();
        if estimate > budget {
            lock(&limiter.queue).waiters.remove(&key);
            metrics::counter!(crate::telemetry::LIMITER_REJECTIONS, "class" => label).increment(1);
            return Err(refuse(estimate));
        }
        limiter.clone().ensure_dispatcher();
        let waited = Instant::now();
        match tokio::time::timeout(budget, receiver).await {
            Ok(Ok(())) => {
                metrics::counter!(crate::telemetry::LIMITER_WAITS, "class" => label).increment(1);
                metrics::histogram!(crate::telemetry::LIMITER_WAIT_SECONDS, "class" => label)
                    .record(waited.elapsed().as_secs_f64());
                Ok(())
            }
            _ => {
                lock(&limiter.queue).waiters.remove(&key);
                metrics::counter!(crate::telemetry::LIMITER_REJECTIONS, "class" => label)
                    .increment(1);
                Err(refuse(limiter.interval * (position + 1)))
            }
        }
    }
}

impl ClassLimiter {
    /// Starts the task that hands out slots to waiters, unless it runs already.
    fn ensure_dispatcher(self: Arc<Self>) {
        {
            let mut q = lock(&self.queue);
            if q.dispatching {
                return;
            }
            q.dispatching = true;
        }
        tokio::spawn(async move { self.dispatch().await });
    }

    /// While anyone waits: take the next slot, give it to the first waiter still waiting.
    async fn dispatch(&self) {
        loop {
            if lock(&self.queue).idle() {
                return;
            }
            match self.slots.try_take().await {
                Ok(()) => lock(&self.queue).serve_next(),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: f64, fairness: Fairness) -> Arc<Limiter> {
        let config = LimitsConfig {
            quotas: Quotas {
                lookup: rate,
                read: rate,
                write: rate,
            },
            fairness,
            ..crate::config::Config::default().limits
        };
        Arc::new(Limiter::new(config, None))
    }

    fn here() -> Target {
        Target {
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_within_the_deadline_and_refuses_beyond_it() {
        let l = limiter(1.0, Fairness::Fifo);
        let start = tokio::time::Instant::now();
        l.acquire(&here(), Class::Lookup, "a", None).await.unwrap();
        l.acquire(&here(), Class::Lookup, "a", Some(Duration::from_secs(2)))
            .await
            .unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(990),
            "waited for the second slot"
        );
        let refused = l
            .acquire(
                &here(),
                Class::Lookup,
                "a",
                Some(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert!(
            refused.retry_after > Duration::from_millis(100),
            "{refused:?}"
        );
        assert_eq!(refused.subject, "123456789012/us-east-1");
    }

    #[tokio::test(start_paused = true)]
    async fn the_per_principal_map_stays_bounded() {
        let l = limiter(1000.0, Fairness::RoundRobin);
        for i in 0..3000 {
            l.acquire(&here(), Class::Read, &format!("p{i}"), None)
                .await
                .unwrap();
        }
        let remembered = lock(&l.target(&here())[Class::Read as usize].queue).remembered();
        assert!(
            remembered <= queue::PRUNE_PRINCIPALS_AT,
            "{remembered} principals remembered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_account_and_region_has_its_own_buckets() {
        let l = limiter(1.0, Fairness::Fifo);
        let other = |account: &str, region: &str| Target {
            account: account.into(),
            region: region.into(),
        };
        let start = tokio::time::Instant::now();
        l.acquire(&here(), Class::Lookup, "a", None).await.unwrap();
        // The same class elsewhere is not behind `here`'s spent slot.
        l.acquire(
            &other("222222222222", "us-east-1"),
            Class::Lookup,
            "a",
            None,
        )
        .await
        .unwrap();
        l.acquire(
            &other("123456789012", "eu-west-1"),
            Class::Lookup,
            "a",
            None,
        )
        .await
        .unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        let here = here();
        let again = l.acquire(&here, Class::Lookup, "a", Some(Duration::from_millis(100)));
        assert!(again.await.is_err(), "here's slot is still spent");
    }

    /// A principal with one call at a time (the shared poll of streams) gets its weight's share
    /// against many principals each with one call at a time.
    #[tokio::test(start_paused = true)]
    async fn a_weighted_principal_with_one_call_at_a_time_gets_its_share() {
        let share = |weight: u32| async move {
            let config = LimitsConfig {
                quotas: Quotas {
                    lookup: 100.0,
                    read: 100.0,
                    write: 100.0,
                },
                weights: [("feed".to_owned(), weight)].into(),
                ..crate::config::Config::default().limits
            };
            let l = Arc::new(Limiter::new(config, None));
            let served = Arc::new(Mutex::new(Vec::new()));
            let stop = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut tasks = Vec::new();
            for who in (0..10)
                .map(|i| format!("looker-{i}"))
                .chain(["feed".to_owned()])
            {
                let (l, served) = (l.clone(), served.clone());
                tasks.push(tokio::spawn(async move {
                    while tokio::time::Instant::now() < stop {
                        l.acquire(&here(), Class::Lookup, &who, None).await.unwrap();
                        lock(&served).push(who.clone());
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let served = lock(&served).clone();
            served.iter().filter(|w| *w == "feed").count() as f64 / served.len() as f64
        };
        let alone = share(1).await;
        let weighted = share(10).await;
        assert!((0.05..0.15).contains(&alone), "weight 1: {alone}");
        assert!(
            (0.4..0.6).contains(&weighted),
            "weight 10 of 20: {weighted}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_lets_a_quiet_principal_through() {
        let l = limiter(10.0, Fairness::RoundRobin);
        l.acquire(&here(), Class::Read, "busy", None).await.unwrap(); // the next slot is 100 ms away
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (l, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire(&here(), Class::Read, "busy", None).await.unwrap();
                lock(&order).push(format!("busy{i}"));
            }));
            tokio::task::yield_now().await;
        }
        let (l2, order2) = (l.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            l2.acquire(&here(), Class::Read, "quiet", None)
                .await
                .unwrap();
            lock(&order2).push("quiet".into());
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = lock(&order).clone();
        let quiet_at = order.iter().position(|o| o == "quiet").unwrap();
        assert!(
            quiet_at <= 1,
            "quiet waited behind the busy principal: {order:?}"
        );
    }
}
