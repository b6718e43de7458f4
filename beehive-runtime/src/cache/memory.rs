//! In-process cache on moka, with a TTL per entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache as Moka;
use moka::ops::compute::Op;

use super::{Cache, CacheError, CacheResult, ttl_millis};

/// Entries an in-process cache holds before evicting the least recently used.
pub const DEFAULT_CAPACITY: u64 = 100_000;

#[derive(Debug, Clone)]
struct Entry {
    value: Arc<str>,
    expires_at: Instant,
}

/// Expires each entry at its own `expires_at`, which `incr` keeps and `set` replaces.
struct ExpireAt;

impl Expiry<String, Entry> for ExpireAt {
    fn expire_after_create(
        &self,
        _key: &String,
        entry: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(updated_at))
    }
}

/// An in-process cache: the embedded default, shared by the services of one process.
#[derive(Clone)]
pub struct MokaCache {
    entries: Moka<String, Entry>,
}

impl MokaCache {
    /// Creates a cache that holds at most `capacity` entries.
    pub fn new(capacity: u64) -> Self {
        let entries = Moka::builder()
            .max_capacity(capacity)
            .expire_after(ExpireAt)
            .build();
        Self { entries }
    }
}

impl Default for MokaCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

fn entry(value: &str, ttl: Duration) -> Entry {
    Entry {
        value: Arc::from(value),
        expires_at: Instant::now() + Duration::from_millis(ttl_millis(ttl)),
    }
}

/// Returns the value of a live entry; moka may hand out an entry in the instant it expires.
fn live(entry: Option<Entry>) -> Option<String> {
    entry
        .filter(|e| e.expires_at > Instant::now())
        .map(|e| e.value.to_string())
}

#[async_trait]
impl Cache for MokaCache {
    async fn get(&self, key: &str) -> CacheResult<Option<String>> {
        Ok(live(self.entries.get(key).await))
    }

    async fn get_many(&self, keys: &[String]) -> CacheResult<Vec<Option<String>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(live(self.entries.get(key).await));
        }
        Ok(values)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()> {
        self.entries.insert(key.to_owned(), entry(value, ttl)).await;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> CacheResult<()> {
        for key in keys {
            self.entries.invalidate(key).await;
        }
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<bool> {
        let result = self
            .entries
            .entry(key.to_owned())
            .and_compute_with(|current| {
                let op = match current {
                    Some(current) if current.value().expires_at > Instant::now() => Op::Nop,
                    _ => Op::Put(entry(value, ttl)),
                };
                std::future::ready(op)
            })
            .await;
        Ok(matches!(
            result,
            moka::ops::compute::CompResult::Inserted(_)
                | moka::ops::compute::CompResult::ReplacedWith(_)
        ))
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CacheResult<i64> {
        let result = self
            .entries
            .entry(key.to_owned())
            .and_try_compute_with(|current| {
                let now = Instant::now();
                let result = match current
                    .map(|c| c.into_value())
                    .filter(|c| c.expires_at > now)
                {
                    Some(current) => match current.value.parse::<i64>() {
                        Ok(number) => Ok(Op::Put(Entry {
                            value: Arc::from(number.saturating_add(delta).to_string()),
                            expires_at: current.expires_at,
                        })),
                        Err(_) => Err(CacheError::NotAnInteger {
                            key: key.to_owned(),
                        }),
                    },
                    None => Ok(Op::Put(entry(&delta.to_string(), ttl))),
                };
                std::future::ready(result)
            })
            .await?;
        let value = match result {
            moka::ops::compute::CompResult::Inserted(e)
            | moka::ops::compute::CompResult::ReplacedWith(e) => e.into_value().value,
            _ => {
                return Err(CacheError::Backend(format!(
                    "incr of `{key}` stored nothing"
                )));
            }
        };
        value.parse::<i64>().map_err(|_| CacheError::NotAnInteger {
            key: key.to_owned(),
        })
    }
}
