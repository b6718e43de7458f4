//! The hot cache: the newest messages of each conversation under `msg:hot:{conversation_id}`.
//!
//! An entry holds up to `message.hot_cache_size` messages, oldest first, with consecutive `seq`.
//! Sends append after their commit. A reader trusts an entry only when its newest `seq` equals
//! the conversation counter it just read, so an entry missing a message is reloaded, never served.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use beehive_generated::entity::messages;
use beehive_runtime::cache::{Cache, CacheError};
use tokio::sync::Mutex;

/// Prefix of hot cache keys; the conversation id follows.
pub const KEY_PREFIX: &str = "msg:hot:";
/// Number of locks that serialise appends and reloads of one conversation in this process.
const LOCK_STRIPES: usize = 256;

/// The newest messages of one conversation, oldest first.
pub type HotList = Arc<Vec<messages::Model>>;

/// A hot cache failure; callers log it and read the database instead.
#[derive(Debug, thiserror::Error)]
pub enum HotCacheError {
    #[error("cache command on key {key} failed")]
    Cache {
        key: String,
        #[source]
        source: CacheError,
    },
    #[error("hot cache entry {key} does not encode or decode as JSON")]
    Decode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Storage of hot lists, keyed by conversation id.
#[async_trait]
pub trait HotCache: Send + Sync {
    async fn get(&self, conversation_id: i64) -> Result<Option<HotList>, HotCacheError>;
    async fn put(&self, conversation_id: i64, list: HotList) -> Result<(), HotCacheError>;
    async fn remove(&self, conversation_id: i64) -> Result<(), HotCacheError>;
}

/// In-process hot cache (the embedded default).
pub struct MemoryHotCache {
    lists: moka::future::Cache<i64, HotList>,
}

impl MemoryHotCache {
    /// Keeps up to `max_conversations` lists, each for `ttl` after its last write.
    pub fn new(max_conversations: u64, ttl: Duration) -> Self {
        Self {
            lists: moka::future::Cache::builder()
                .max_capacity(max_conversations)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl HotCache for MemoryHotCache {
    async fn get(&self, conversation_id: i64) -> Result<Option<HotList>, HotCacheError> {
        Ok(self.lists.get(&conversation_id).await)
    }

    async fn put(&self, conversation_id: i64, list: HotList) -> Result<(), HotCacheError> {
        self.lists.insert(conversation_id, list).await;
        Ok(())
    }

    async fn remove(&self, conversation_id: i64) -> Result<(), HotCacheError> {
        self.lists.invalidate(&conversation_id).await;
        Ok(())
    }
}

/// Hot cache over the runtime's shared [`Cache`] (Redis in deployments): each list is one
/// JSON value with a TTL.
pub struct SharedHotCache {
    cache: Arc<dyn Cache>,
    key_prefix: String,
    ttl: Duration,
}

impl SharedHotCache {
    /// Uses keys `{namespace}msg:hot:{conversation_id}`; `namespace` is empty in deployments
    /// and unique per test.
    pub fn new(cache: Arc<dyn Cache>, namespace: &str, ttl: Duration) -> Self {
        Self {
            cache,
            key_prefix: format!("{namespace}{KEY_PREFIX}"),
            ttl,
        }
    }

    fn key(&self, conversation_id: i64) -> String {
        format!("{}{conversation_id}", self.key_prefix)
    }
}

#[async_trait]
impl HotCache for SharedHotCache {
    async fn get(&self, conversation_id: i64) -> Result<Option<HotList>, HotCacheError> {
        let key = self.key(conversation_id);
        let value = self
            .cache
            .get(&key)
            .await
            .map_err(|source| HotCacheError::Cache {
                key: key.clone(),
                source,
            })?;
        let Some(value) = value else {
            return Ok(None);
        };
        let list: Vec<messages::Model> =
            serde_json::from_str(&value).map_err(|source| HotCacheError::Decode { key, source })?;
        Ok(Some(Arc::new(list)))
    }

    async fn put(&self, conversation_id: i64, list: HotList) -> Result<(), HotCacheError> {
        let key = self.key(conversation_id);
        let value =
            serde_json::to_string(list.as_ref()).map_err(|source| HotCacheError::Decode {
                key: key.clone(),
                source,
            })?;
        self.cache
            .set(&key, &value, self.ttl)
            .await
            .map_err(|source| HotCacheError::Cache { key, source })
    }

    async fn remove(&self, conversation_id: i64) -> Result<(), HotCacheError> {
        let key = self.key(conversation_id);
        self.cache
            .delete(std::slice::from_ref(&key))
            .await
            .map_err(|source| HotCacheError::Cache { key, source })
    }
}

/// The service's view of the hot cache: appends and reloads under a per-conversation lock.
pub(crate) struct HotMessages {
    cache: Arc<dyn HotCache>,
    size: usize,
    locks: Vec<Mutex<()>>,
}

impl HotMessages {
    pub(crate) fn new(cache: Arc<dyn HotCache>, size: usize) -> Self {
        Self {
            cache,
            size: size.max(1),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Messages kept per conversation.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn lock(&self, conversation_id: i64) -> &Mutex<()> {
        let stripe = conversation_id.rem_euclid(LOCK_STRIPES as i64) as usize;
        &self.locks[stripe]
    }

    /// Returns the cached list when its newest message has `seq == last_seq`.
    pub(crate) async fn current(&self, conversation_id: i64, last_seq: i64) -> Option<HotList> {
        match self.cache.get(conversation_id).await {
            Ok(Some(list)) if list.last().map(|message| message.seq) == Some(last_seq) => {
                Some(list)
            }
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(conversation_id, error = %err, "reading the hot cache failed");
                None
            }
        }
    }

    /// Stores a freshly loaded list (oldest first).
    pub(crate) async fn store(&self, conversation_id: i64, list: HotList) {
        if let Err(err) = self.cache.put(conversation_id, list).await {
            tracing::warn!(conversation_id, error = %err, "filling the hot cache failed");
        }
    }

    /// Appends a committed message when it directly follows the cached list, and drops the
    /// entry when it does not (a concurrent send got there first).
    pub(crate) async fn append(&self, message: &messages::Model) {
        let conversation_id = message.conversation_id;
        let _guard = self.lock(conversation_id).lock().await;
        let list = match self.cache.get(conversation_id).await {
            Ok(Some(list)) => list,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(conversation_id, error = %err, "reading the hot cache failed");
                self.forget(conversation_id).await;
                return;
            }
        };
        let newest = list.last().map_or(0, |cached| cached.seq);
        if newest >= message.seq {
            return;
        }
        if newest + 1 != message.seq {
            self.forget(conversation_id).await;
            return;
        }
        let skip = (list.len() + 1).saturating_sub(self.size);
        let mut next: Vec<messages::Model> = list.iter().skip(skip).cloned().collect();
        next.push(message.clone());
        self.store(conversation_id, Arc::new(next)).await;
    }

    /// Drops a conversation's entry, after a change the list cannot absorb.
    pub(crate) async fn forget(&self, conversation_id: i64) {
        if let Err(err) = self.cache.remove(conversation_id).await {
            tracing::warn!(conversation_id, error = %err, "dropping a hot cache entry failed");
        }
    }
}
