//! Key-value cache: one object-safe trait with an in-process backend ([`MokaCache`]) and a Redis
//! backend ([`RedisCache`]), plus the cache-aside layer the generated models use
//! ([`CacheAside`], [`ModelStore`]).
//!
//! Values are strings (the models store rows as JSON). Every entry has a time to live.

mod aside;
mod memory;
mod model;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::CacheConfig;

pub use self::aside::{CacheAside, CacheAsideOptions, KeyPart, PLACEHOLDER};
pub use self::memory::MokaCache;
pub use self::model::{CachedEntity, ModelError, ModelStore};
pub use self::redis::{DEFAULT_KEY_PREFIX, RedisCache};

/// A failure of a cache operation.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis command failed: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("cache value at `{key}` is not an integer")]
    NotAnInteger { key: String },
    /// A failure injected or reported by a backend that is neither Redis nor moka.
    #[error("cache backend failed: {0}")]
    Backend(String),
}

pub type CacheResult<T> = Result<T, CacheError>;

/// A shared key-value cache with per-entry time to live.
///
/// Implementations are cheap to share as `Arc<dyn Cache>`. A TTL of zero is treated as one
/// millisecond, so that every entry expires.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// Returns the value at `key`, or `None` when it is missing or expired.
    async fn get(&self, key: &str) -> CacheResult<Option<String>>;

    /// Returns the values at `keys`, in the same order.
    async fn get_many(&self, keys: &[String]) -> CacheResult<Vec<Option<String>>>;

    /// Stores `value` at `key` for `ttl`, replacing any value and TTL.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()>;

    /// Removes every key in `keys`; missing keys are not an error.
    async fn delete(&self, keys: &[String]) -> CacheResult<()>;

    /// Stores `value` at `key` for `ttl` only if `key` is missing; returns whether it stored it.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<bool>;

    /// Adds `delta` to the integer at `key` and returns the new value. A missing key starts at 0
    /// and gets `ttl`; an existing key keeps its TTL.
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CacheResult<i64>;
}

/// Connects to Redis when `cache.redis_url` is set, with every key under `cache.key_prefix`,
/// else returns an in-process cache.
pub async fn from_config(config: &CacheConfig) -> CacheResult<Arc<dyn Cache>> {
    match &config.redis_url {
        Some(url) => {
            let cache = RedisCache::connect(url)
                .await?
                .with_key_prefix(&config.key_prefix);
            Ok(Arc::new(cache))
        }
        None => Ok(Arc::new(MokaCache::new(memory::DEFAULT_CAPACITY))),
    }
}

/// Returns `ttl` in milliseconds, at least 1.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
