//! Slots shared by all replicas: an atomic GCRA in a Lua script on Redis's own clock (`TIME`), so
//! replicas' clocks do not matter. While Redis cannot be reached, or answers what cannot be true (a
//! wait beyond the longest a call may wait: its state was tampered with or is corrupt), each replica
//! falls back to a local GCRA at quota / expected replicas, says so in the log, the
//! `..._redis_fallback` gauge and `/readyz`, and tries Redis again every second. `rediss://` URLs
//! use TLS (rustls), optionally with a private CA; a password in the URL authenticates.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use redis::{Script, aio::ConnectionManager};

use super::gcra::Gcra;
use crate::locks::lock;

/// KEYS[1]: the bucket; ARGV[1]: the interval in µs; ARGV[2]: how far back slots not taken stay
/// available, in µs (`gcra::CATCH_UP`). Returns {1, 0} with the slot taken, or {0, µs to wait}. The
/// key expires once idle, so buckets of gone accounts do not linger.
const GCRA_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local floor = now - tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < floor then tat = floor end
if tat > now then return {0, tat - now} end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', math.ceil(interval / 1000) + 1000)
return {1, 0}
"#;

/// How long one Redis round trip may take before the replica falls back.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
const RETRY_REDIS_EVERY: Duration = Duration::from_secs(1);

/// The connection and script every bucket shares.
#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    script: Script,
}

impl Redis {
    /// Connects lazily: a gateway starts (in fallback) even while Redis is down.
    pub fn new(url: &str, ca: Option<&[u8]>) -> Result<Redis, redis::RedisError> {
        let client = match ca {
            None => redis::Client::open(url)?,
            Some(ca) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                },
            )?,
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Redis {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            script: Script::new(GCRA_LUA),
        })
    }
}

impl Redis {
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").finish_non_exhaustive()
    }
}

/// One bucket's slots in Redis, with its local fallback.
pub struct RedisSlots {
    redis: Redis,
    key: String,
    interval_us: u64,
    /// A wait Redis answers beyond this is not believed.
    max_wait: Duration,
    fallback: Mutex<Gcra>,
    /// While set, Redis is not asked again before this instant.
    retry_at: Mutex<Option<Instant>>,
    /// Whether slots come from the local fallback (logged and exported on every change).
    fallback_active: AtomicBool,
}

impl std::fmt::Debug for RedisSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSlots")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisSlots {
    pub fn new(
        redis: Redis,
        key: String,
        rate: f64,
        fallback_rate: f64,
        max_wait: Duration,
    ) -> RedisSlots {
        RedisSlots {
            redis,
            key,
            interval_us: super::gcra::interval_of(rate).as_micros() as u64,
            fallback: Mutex::new(Gcra::new(fallback_rate)),
            max_wait,
            retry_at: Mutex::new(None),
            fallback_active: AtomicBool::new(false),
        }
    }

    /// Whether an answer can be true: taken, or a wait within the longest any call may wait (the
    /// script never sets a key further ahead than one interval, so a longer wait means someone did).
    fn believable(&self, taken: i64, wait_us: i64) -> bool {
        let interval_us = i64::try_from(self.interval_us).unwrap_or(i64::MAX);
        let limit_us = i64::try_from(self.max_wait.as_micros()).unwrap_or(i64::MAX);
        taken == 1 || (0..=limit_us.max(interval_us)).contains(&wait_us)
    }

    /// Whether slots come from the local fallback now.
    pub fn in_fallback(&self) -> bool {
        self.fallback_active.load(Ordering::Relaxed)
    }

    pub async fn try_take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        if lock(&self.retry_at).is_some_and(|at| now < at) {
            return lock(&self.fallback).try_take(now);
        }
        let mut connection = self.redis.connection.clone();
        let mut invocation = self.redis.script.prepare_invoke();
        invocation
            .key(&self.key)
            .arg(self.interval_us)
            .arg(super::gcra::CATCH_UP.as_micros() as u64);
        let call = invocation.invoke_async::<(i64, i64)>(&mut connection);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok((taken, wait_us))) if self.believable(taken, wait_us) => {
                *lock(&self.retry_at) = None;
                if self.fallback_active.swap(false, Ordering::Relaxed) {
                    tracing::info!(key = %self.key, "Redis is back: rate limits are shared again");
                    metrics::gauge!(crate::telemetry::LIMITER_REDIS_FALLBACK).decrement(1.0);
                }
                if taken == 1 {
                    Ok(())
                } else {
                    Err(Duration::from_micros(wait_us.max(0) as u64))
                }
            }
            failure => {
                let reason = match failure {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok((_, wait_us))) => format!(
                        "Redis answered a wait of {wait_us} µs, beyond the longest a call may wait: its limiter state is not believed"
                    ),
                    _ => "timed out".to_owned(),
                };
                // The failed round trip took time: the slot is taken now, not when it was asked for.
                let now = Instant::now();
                *lock(&self.retry_at) = Some(now + RETRY_REDIS_EVERY);
                if !self.fallback_active.swap(true, Ordering::Relaxed) {
                    tracing::warn!(key = %self.key, %reason, "Redis unreachable: falling back to local limits at quota / expected replicas");
                    metrics::gauge!(crate::telemetry::LIMITER_REDIS_FALLBACK).increment(1.0);
                }
                lock(&self.fallback).try_take(now)
            }
        }
    }
}
