//! Redis cache through a `ConnectionManager`, which reconnects after failures.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{Cache, CacheResult, ttl_millis};

/// A cache on a Redis server, shared by every process that connects to it.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
}

impl RedisCache {
    /// Connects to the Redis server at `url` (`redis://host:port/db`).
    pub async fn connect(url: &str) -> CacheResult<Self> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(Self { connection })
    }

    /// Wraps an existing connection manager.
    pub fn new(connection: ConnectionManager) -> Self {
        Self { connection }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let mut connection = self.connection.clone();
        Ok(redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await?)
    }

    async fn get_many(&self, keys: &[String]) -> CacheResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection.clone();
        Ok(redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut connection)
            .await?)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
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
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<bool> {
        let mut connection = self.connection.clone();
        let stored: Option<String> = redis::cmd("SET")
            .arg(key)
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
        // Both commands run in one MULTI/EXEC: the key gets its TTL only when it is created.
        let (value,): (i64,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .ignore()
            .cmd("INCRBY")
            .arg(key)
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
