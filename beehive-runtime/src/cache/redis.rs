//! Redis cache through a `ConnectionManager`, which reconnects after failures.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{Cache, CacheResult, ttl_millis};

/// Key prefix of a [`RedisCache`] unless [`RedisCache::with_key_prefix`] sets another. It is
/// also the default of the `cache.key_prefix` configuration key.
pub const DEFAULT_KEY_PREFIX: &str = "beehive:";

/// A cache on a Redis server, shared by every process that connects to it.
///
/// Every key a caller passes is stored as the key prefix followed by that key, so
/// deployments with different prefixes can share one Redis server without seeing each
/// other's keys. Callers never see the prefix.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    key_prefix: Arc<str>,
}

impl RedisCache {
    /// Connects to the Redis server at `url` (`redis://host:port/db`), with keys under
    /// [`DEFAULT_KEY_PREFIX`].
    pub async fn connect(url: &str) -> CacheResult<Self> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(Self::new(connection))
    }

    /// Wraps an existing connection manager, with keys under [`DEFAULT_KEY_PREFIX`].
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            key_prefix: Arc::from(DEFAULT_KEY_PREFIX),
        }
    }

    /// Stores every key under `key_prefix` instead. An empty prefix stores keys as given.
    pub fn with_key_prefix(mut self, key_prefix: &str) -> Self {
        self.key_prefix = Arc::from(key_prefix);
        self
    }

    /// Returns the prefix put in front of every key.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Returns the Redis key that stores the caller's `key`. Every command below goes through
    /// this or [`Self::server_keys`], so no key reaches Redis without the prefix.
    fn server_key(&self, key: &str) -> String {
        let mut server_key = String::with_capacity(self.key_prefix.len() + key.len());
        server_key.push_str(&self.key_prefix);
        server_key.push_str(key);
        server_key
    }

    fn server_keys(&self, keys: &[String]) -> Vec<String> {
        keys.iter().map(|key| self.server_key(key)).collect()
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let mut connection = self.connection.clone();
        Ok(redis::cmd("GET")
            .arg(self.server_key(key))
            .query_async(&mut connection)
            .await?)
    }

    async fn get_many(&self, keys: &[String]) -> CacheResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection.clone();
        Ok(redis::cmd("MGET")
            .arg(self.server_keys(keys))
            .query_async(&mut connection)
            .await?)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(self.server_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> CacheResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.server_keys(keys))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<bool> {
        let mut connection = self.connection.clone();
        let stored: Option<String> = redis::cmd("SET")
            .arg(self.server_key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut connection)
            .await?;
        Ok(stored.is_some())
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CacheResult<i64> {
        let mut connection = self.connection.clone();
        let server_key = self.server_key(key);
        // Both commands run in one MULTI/EXEC: the key gets its TTL only when it is created.
        let (value,): (i64,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&server_key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .ignore()
            .cmd("INCRBY")
            .arg(&server_key)
            .arg(delta)
            .query_async(&mut connection)
            .await
            .map_err(|err| {
                // Redis answers "ERR value is not an integer or out of range".
                if err.to_string().contains("not an integer") {
                    super::CacheError::NotAnInteger {
                        key: key.to_owned(),
                    }
                } else {
                    err.into()
                }
            })?;
        Ok(value)
    }
}
