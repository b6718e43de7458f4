//! bcrypt hashing off the async threads, with at most one hash per CPU core at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use beehive_runtime::ServiceError;
use tokio::sync::{OnceCell, Semaphore};

/// Password compared against when an account does not exist, so that an unknown account costs
/// the same bcrypt work as a wrong password and timing does not reveal which one it was.
const DECOY_PASSWORD: &str = "decoy password for unknown accounts";

/// Hashes and verifies passwords with bcrypt on tokio's blocking pool.
///
/// A semaphore sized to the available cores bounds the hashes running at once: more would only
/// queue inside the OS scheduler and starve the async workers that serve cheap calls. A call
/// whose deadline would pass before its hash could finish fails without hashing, because the
/// caller would never see the result and the CPU time would be taken from calls that can still
/// succeed.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    decoy_hash: Arc<OnceCell<String>>,
    /// Duration of the last hash in microseconds, the estimate for the next one.
    last_hash_micros: Arc<AtomicU64>,
}

impl PasswordHasher {
    /// Builds a hasher with bcrypt cost `cost` and one permit per available core.
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_concurrency(cost, cores)
    }

    /// Builds a hasher that runs at most `concurrency` hashes at once.
    pub fn with_concurrency(cost: u32, concurrency: usize) -> Self {
        Self {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy_hash: Arc::new(OnceCell::new()),
            last_hash_micros: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hashes `password` with a fresh salt, if that can finish before `deadline`.
    pub async fn hash(&self, password: String, deadline: Instant) -> Result<String, ServiceError> {
        let cost = self.cost;
        self.run(deadline, move || bcrypt::hash(password, cost))
            .await
    }

    /// Checks `password` against a stored bcrypt hash, if that can finish before `deadline`.
    pub async fn verify(
        &self,
        password: String,
        hash: String,
        deadline: Instant,
    ) -> Result<bool, ServiceError> {
        self.run(deadline, move || bcrypt::verify(password, &hash))
            .await
    }

    /// Spends the same work as [`PasswordHasher::verify`] on an account that does not exist.
    pub async fn verify_decoy(
        &self,
        password: String,
        deadline: Instant,
    ) -> Result<(), ServiceError> {
        let decoy = self
            .decoy_hash
            .get_or_try_init(|| self.hash(DECOY_PASSWORD.to_owned(), deadline))
            .await?
            .clone();
        self.verify(password, decoy, deadline).await?;
        Ok(())
    }

    async fn run<T, F>(&self, deadline: Instant, work: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(ServiceError::internal)?;
        let estimate = Duration::from_micros(self.last_hash_micros.load(Ordering::Relaxed));
        if deadline.saturating_duration_since(Instant::now()) < estimate {
            return Err(ServiceError::resource_exhausted(
                "too many password checks in progress to finish this one before the deadline; retry later",
            ));
        }
        let last_hash_micros = self.last_hash_micros.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let outcome = work();
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            last_hash_micros.store(micros, Ordering::Relaxed);
            drop(permit);
            outcome
        })
        .await
        .map_err(ServiceError::internal)?;
        outcome.map_err(ServiceError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cheapest cost bcrypt accepts, so the tests run fast.
    const COST: u32 = 4;
    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::with_concurrency(COST, 2);
        let deadline = Instant::now() + LONG;
        let hash = hasher.hash("secret password".to_owned(), deadline).await;
        let hash = hash.expect("hash");
        let right = hasher.verify("secret password".to_owned(), hash.clone(), deadline);
        assert_eq!(right.await.ok(), Some(true));
        let wrong = hasher.verify("other password".to_owned(), hash, deadline);
        assert_eq!(wrong.await.ok(), Some(false));
    }

    #[tokio::test]
    async fn expired_deadline_skips_hash() {
        let hasher = PasswordHasher::with_concurrency(COST, 1);
        let hash = hasher.hash("secret password".to_owned(), Instant::now() + LONG);
        let hash = hash.await.expect("hash");
        let estimate = hasher.last_hash_micros.load(Ordering::Relaxed);
        assert!(estimate > 0);

        let late = hasher.verify("secret password".to_owned(), hash, Instant::now());
        let code = late.await.err().map(|err| err.code());
        assert_eq!(code, Some(tonic::Code::ResourceExhausted));
    }
}
