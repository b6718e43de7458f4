//! Cache-aside reads and invalidation, independent of any table: keys qualified by database,
//! one loader per key per process, not-found placeholders, jittered TTLs, and invalidation that
//! is retried in the background instead of failing a write.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::OnceCell;

use super::Cache;

/// Value cached for a key whose row does not exist: JSON `null`, which no stored row equals.
pub const PLACEHOLDER: &str = "null";

/// Settings of [`CacheAside`].
#[derive(Debug, Clone, PartialEq)]
pub struct CacheAsideOptions {
    /// Lifetime of a cached row before jitter.
    pub ttl: Duration,
    /// Fraction of `ttl` by which each entry's lifetime varies either way, so that entries
    /// written together do not expire together.
    pub jitter: f64,
    /// Lifetime of a not-found placeholder.
    pub placeholder_ttl: Duration,
    /// Delay before the second delete of an invalidation, which removes a stale row that another
    /// process loaded before the write committed and stored after the first delete.
    ///
    /// NOTE: a load in another process that takes longer than this delay can still cache a stale
    /// row until the TTL ends; loads in this process are covered by the flight check instead.
    pub second_delete_after: Duration,
    /// Wait before the first retry of a failed invalidation; it doubles up to `retry_max_delay`.
    pub retry_delay: Duration,
    pub retry_max_delay: Duration,
    /// Retries of a failed invalidation before it is logged as abandoned.
    pub max_retries: u32,
}

impl Default for CacheAsideOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(7 * 24 * 60 * 60),
            jitter: 0.05,
            placeholder_ttl: Duration::from_secs(60),
            second_delete_after: Duration::from_secs(1),
            retry_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(30),
            max_retries: 50,
        }
    }
}

/// One value of a cache key: written into the key's last segment.
pub trait KeyPart: Sync {
    fn write_key_part(&self, out: &mut String);
}

macro_rules! display_key_part {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key_part(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_key_part!(i16, i32, i64, u16, u32, u64, bool);

impl KeyPart for str {
    fn write_key_part(&self, out: &mut String) {
        // `,` separates the values of a composite key and `%` starts an escape.
        for c in self.chars() {
            match c {
                '%' => out.push_str("%25"),
                ',' => out.push_str("%2C"),
                c => out.push(c),
            }
        }
    }
}

impl KeyPart for String {
    fn write_key_part(&self, out: &mut String) {
        self.as_str().write_key_part(out);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for &T {
    fn write_key_part(&self, out: &mut String) {
        (**self).write_key_part(out);
    }
}

/// The outcome of one load, shared by every caller waiting on it.
type Shared<E> = Result<Option<Arc<str>>, Arc<E>>;

/// A load in progress for one key.
struct Flight<E> {
    result: OnceCell<Shared<E>>,
    /// Cleared when the key is invalidated while the load runs, so its result is not cached.
    current: Arc<AtomicBool>,
}

/// A flight as stored in the map: its flag, and the flight itself with its error type erased so
/// that one map serves loaders with different error types.
struct FlightEntry {
    current: Arc<AtomicBool>,
    flight: Arc<dyn std::any::Any + Send + Sync>,
}

struct Inner {
    cache: Arc<dyn Cache>,
    database: String,
    options: CacheAsideOptions,
    /// Loads in progress, by key.
    flights: Mutex<HashMap<String, FlightEntry>>,
}

/// Cache-aside access to one database's rows. Cheap to clone.
#[derive(Clone)]
pub struct CacheAside {
    inner: Arc<Inner>,
}

impl CacheAside {
    /// Creates a cache-aside layer for the database named `database` with default options.
    pub fn new(cache: Arc<dyn Cache>, database: impl Into<String>) -> Self {
        Self::with_options(cache, database, CacheAsideOptions::default())
    }

    pub fn with_options(
        cache: Arc<dyn Cache>,
        database: impl Into<String>,
        options: CacheAsideOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache,
                database: database.into(),
                options,
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    pub fn database(&self) -> &str {
        &self.inner.database
    }

    pub fn options(&self) -> &CacheAsideOptions {
        &self.inner.options
    }

    /// Returns `cache:<database>:<table>:<columns>:<values>`, where `columns` names the key's
    /// columns joined by `,` and the values follow in the same order, joined by `,`.
    pub fn key(&self, table: &str, columns: &str, values: &[&dyn KeyPart]) -> String {
        let mut key = format!("cache:{}:{table}:{columns}:", self.inner.database);
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                key.push(',');
            }
            value.write_key_part(&mut key);
        }
        key
    }

    /// Returns the lifetime of a newly cached row: the TTL varied by up to ±`jitter`.
    pub fn jittered_ttl(&self) -> Duration {
        let options = &self.inner.options;
        let jitter = options.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 {
            rand::rng().random_range(1.0 - jitter..=1.0 + jitter)
        } else {
            1.0
        };
        options.ttl.mul_f64(factor)
    }

    /// Returns the JSON of the row at `key`, loading it with `load` on a miss.
    ///
    /// Concurrent misses of one key in this process share a single call of `load`. A loaded row is
    /// cached for the jittered TTL and a missing one as [`PLACEHOLDER`]. Cache failures are logged
    /// and never fail the read: the row then comes from `load`.
    pub async fn fetch<E, F, Fut>(&self, key: &str, load: F) -> Result<Option<Arc<str>>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<String>, E>>,
    {
        if let Some(hit) = self.cached(key).await {
            return Ok(hit);
        }

        let flight = self.join_flight::<E>(key);
        let result = flight
            .result
            .get_or_init(|| async {
                // A load that finished just before this flight began has filled the cache.
                if let Some(hit) = self.cached(key).await {
                    return Ok(hit);
                }
                let loaded = load().await.map_err(Arc::new)?;
                let loaded: Option<Arc<str>> = loaded.map(Arc::from);
                self.store(key, loaded.as_deref(), &flight.current).await;
                Ok(loaded)
            })
            .await
            .clone();
        self.leave_flight(key, &flight);
        result
    }

    /// Reads `key`; `Some(None)` is a cached placeholder, `None` a miss or a cache failure.
    async fn cached(&self, key: &str) -> Option<Option<Arc<str>>> {
        match self.inner.cache.get(key).await {
            Ok(Some(value)) if value == PLACEHOLDER => Some(None),
            Ok(Some(value)) => Some(Some(Arc::from(value))),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(key, error = %error, "cache read failed; reading the database");
                None
            }
        }
    }

    /// Caches a loaded row (or a placeholder) unless the key was invalidated during the load.
    async fn store(&self, key: &str, value: Option<&str>, current: &AtomicBool) {
        let options = &self.inner.options;
        let (value, ttl) = match value {
            Some(json) => (json, self.jittered_ttl()),
            None => (PLACEHOLDER, options.placeholder_ttl),
        };
        if !current.load(Ordering::SeqCst) {
            return;
        }
        if let Err(error) = self.inner.cache.set(key, value, ttl).await {
            tracing::warn!(key, error = %error, "cache write after a load failed");
            return;
        }
        // An invalidation that ran during the `set` may have deleted the key before the value
        // landed: delete it again so the possibly stale value does not survive.
        if !current.load(Ordering::SeqCst) {
            self.invalidate(vec![key.to_owned()]).await;
        }
    }

    fn join_flight<E: Send + Sync + 'static>(&self, key: &str) -> Arc<Flight<E>> {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = flights.get(key)
            && let Ok(flight) = Arc::clone(&existing.flight).downcast::<Flight<E>>()
        {
            return flight;
        }
        let current = Arc::new(AtomicBool::new(true));
        let flight = Arc::new(Flight {
            result: OnceCell::new(),
            current: current.clone(),
        });
        let entry = FlightEntry {
            current,
            flight: flight.clone(),
        };
        flights.insert(key.to_owned(), entry);
        flight
    }

    fn leave_flight<E: Send + Sync + 'static>(&self, key: &str, flight: &Arc<Flight<E>>) {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        let is_this_flight = flights
            .get(key)
            .is_some_and(|existing| Arc::ptr_eq(&existing.current, &flight.current));
        if is_this_flight {
            flights.remove(key);
        }
    }

    /// Marks loads of `keys` in progress as stale, so they do not cache what they read.
    fn cancel_flights(&self, keys: &[String]) {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if let Some(entry) = flights.remove(key) {
                entry.current.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Deletes `keys` after a committed write. Never fails: a failed delete is logged and retried
    /// in the background, and a second delete follows after
    /// [`CacheAsideOptions::second_delete_after`].
    pub async fn invalidate(&self, mut keys: Vec<String>) {
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return;
        }
        self.cancel_flights(&keys);
        let first = self.inner.cache.delete(&keys).await;
        let this = self.clone();
        let delay = match first {
            Ok(()) => this.inner.options.second_delete_after,
            Err(error) => {
                tracing::warn!(keys = ?keys, attempt = 1, error = %error, "cache invalidation failed; retrying in the background");
                this.inner.options.retry_delay
            }
        };
        tokio::spawn(async move { this.retry_delete(keys, delay).await });
    }

    /// Deletes `keys` after `delay`, retrying with doubling delays until it succeeds or the
    /// retries run out.
    async fn retry_delete(&self, keys: Vec<String>, mut delay: Duration) {
        let options = &self.inner.options;
        for attempt in 2..=options.max_retries.saturating_add(1) {
            tokio::time::sleep(delay).await;
            self.cancel_flights(&keys);
            match self.inner.cache.delete(&keys).await {
                Ok(()) => {
                    if attempt > 2 {
                        tracing::info!(keys = ?keys, attempt, "cache invalidation succeeded after retrying");
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(keys = ?keys, attempt, error = %error, "cache invalidation failed; retrying");
                }
            }
            delay = (delay * 2)
                .min(options.retry_max_delay)
                .max(options.retry_delay);
        }
        tracing::error!(keys = ?keys, attempts = options.max_retries, "cache invalidation abandoned; the entries expire with their TTL");
    }
}
