//! bcrypt hashing off the async threads, with at most one hash per CPU core at a time.

use std::sync::Arc;

use beehive_runtime::ServiceError;
use tokio::sync::{OnceCell, Semaphore};

/// Password compared against when an account does not exist, so that an unknown account costs
/// the same bcrypt work as a wrong password and timing does not reveal which one it was.
const DECOY_PASSWORD: &str = "decoy password for unknown accounts";

/// Hashes and verifies passwords with bcrypt on tokio's blocking pool.
///
/// A semaphore sized to the available cores bounds the hashes running at once: more would only
/// queue inside the OS scheduler and starve the async workers that serve cheap calls.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    decoy_hash: Arc<OnceCell<String>>,
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
        }
    }

    /// Hashes `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, ServiceError> {
        let cost = self.cost;
        self.run(move || bcrypt::hash(password, cost)).await
    }

    /// Checks `password` against a stored bcrypt hash.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ServiceError> {
        self.run(move || bcrypt::verify(password, &hash)).await
    }

    /// Spends the same work as [`PasswordHasher::verify`] on an account that does not exist.
    pub async fn verify_decoy(&self, password: String) -> Result<(), ServiceError> {
        let decoy = self
            .decoy_hash
            .get_or_try_init(|| self.hash(DECOY_PASSWORD.to_owned()))
            .await?
            .clone();
        self.verify(password, decoy).await?;
        Ok(())
    }

    async fn run<T, F>(&self, work: F) -> Result<T, ServiceError>
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
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = work();
            drop(permit);
            outcome
        })
        .await
        .map_err(ServiceError::internal)?;
        outcome.map_err(ServiceError::internal)
    }
}
