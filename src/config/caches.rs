//! How long answers are shared by identical calls: LookupEvents' coalescer and pollers' reads.

use std::time::Duration;

use clap::Args;

use super::duration::HumanDuration;
use crate::operation::{Operation, Trait};

#[derive(Debug, Args)]
pub struct CacheSettings {
    /// Identical LookupEvents requests within this time are answered from cache; 0s: off.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub lookup_cache_ttl: HumanDuration,
    // Help from `Operation`'s table: the cached RPCs are named where they are decided.
    #[arg(long, value_name = "DURATION", default_value = "2s", help = read_cache_help())]
    pub read_cache_ttl: HumanDuration,
}

/// The caches' lifetimes; zero turns a cache off.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// LookupEvents answers served again to identical requests within this time.
    pub lookup_ttl: Duration,
    /// Pollers' reads served again within this time.
    pub read_ttl: Duration,
}

impl CacheSettings {
    pub fn check(self) -> CacheConfig {
        CacheConfig {
            lookup_ttl: self.lookup_cache_ttl.0,
            read_ttl: self.read_cache_ttl.0,
        }
    }
}

/// The help of `read_cache_ttl`, naming the RPCs `Operation` says are cached.
fn read_cache_help() -> String {
    format!(
        "{} answers are shared by identical calls and kept this long (a change through the gateway drops its account's at once); 0s: off",
        Operation::names_with(Trait::Cached)
    )
}
