//! Reads and writes of the user service's state: user rows through the cache-aside model of
//! `users`, and online state, resend guards and login failure counts in the cache.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use beehive_generated::entity::users;
use beehive_generated::model::users::UsersModel;
use beehive_runtime::ServiceError;
use beehive_runtime::cache::{Cache, CacheAside, ModelError};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

/// Value of `user:online:{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineState {
    pub online: bool,
    /// Unix seconds of the last heartbeat or login.
    pub last_active: i64,
}

/// Cache key of a user's online state.
pub fn online_key(user_id: i64) -> String {
    format!("user:online:{user_id}")
}

/// Cache key that blocks a second code to `email` until it expires.
pub fn resend_key(email: &str) -> String {
    format!("user:code:resend:{email}")
}

/// Cache key counting failed logins to `account` (as normalised by
/// [`crate::normalize_account`]) from the client address `client`.
///
/// The address is part of the key so failures from one place never lock the account's owner
/// out elsewhere. Calls without a known address share the key `unknown`.
pub fn login_failures_key(account: &str, client: Option<IpAddr>) -> String {
    match client {
        Some(ip) => format!("user:login:failures:{ip}:{account}"),
        None => format!("user:login:failures:unknown:{account}"),
    }
}

fn model_error(err: ModelError) -> ServiceError {
    match err {
        ModelError::NotFound { table } => ServiceError::not_found(format!("row of {table}")),
        ModelError::Database(err) => ServiceError::internal(err.to_string()),
    }
}

/// The user service's view of the database and the cache.
pub(crate) struct Store {
    users: UsersModel,
    cache: Arc<dyn Cache>,
}

impl Store {
    pub(crate) fn new(db: DatabaseConnection, db_name: String, cache: Arc<dyn Cache>) -> Self {
        let aside = CacheAside::new(cache.clone(), db_name);
        Self {
            users: UsersModel::new(db, aside),
            cache,
        }
    }

    pub(crate) async fn user_by_id(&self, id: i64) -> Result<Option<users::Model>, ServiceError> {
        self.users.find_one(id).await.map_err(model_error)
    }

    /// Finds the user whose username equals `username` ignoring case: by `username_key`, or by
    /// the exact `username` for rows stored without a key.
    pub(crate) async fn user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<users::Model>, ServiceError> {
        let by_key = self
            .users
            .find_one_by_username_key(&crate::username_key(username))
            .await
            .map_err(model_error)?;
        if by_key.is_some() {
            return Ok(by_key);
        }
        self.users
            .find_one_by_username(username)
            .await
            .map_err(model_error)
    }

    pub(crate) async fn user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<users::Model>, ServiceError> {
        self.users
            .find_one_by_email(email)
            .await
            .map_err(model_error)
    }

    /// Drops the not-found placeholders of a user inserted outside the model (in a transaction
    /// with the code it used up).
    pub(crate) async fn user_inserted(&self, user: &users::Model) {
        self.users.invalidate(user).await;
    }

    /// Stores a login time; the cache shows it at once.
    pub(crate) async fn record_login(
        &self,
        user: &users::Model,
        at: DateTime<Utc>,
    ) -> Result<users::Model, ServiceError> {
        let mut changed = user.clone();
        changed.last_login_at = Some(at);
        self.users.update(user, changed).await.map_err(model_error)
    }

    /// Writes the given profile fields and `updated_at`; the cache shows them at once.
    pub(crate) async fn update_profile(
        &self,
        user: &users::Model,
        nickname: Option<String>,
        avatar_url: Option<String>,
    ) -> Result<users::Model, ServiceError> {
        let mut changed = user.clone();
        if let Some(nickname) = nickname {
            changed.nickname = nickname;
        }
        if let Some(avatar_url) = avatar_url {
            changed.avatar_url = Some(avatar_url);
        }
        changed.updated_at = Utc::now();
        self.users.update(user, changed).await.map_err(model_error)
    }

    /// Whether `user:online:{id}` holds `"online": true`.
    pub(crate) async fn is_online(&self, user_id: i64) -> Result<bool, ServiceError> {
        let value = self
            .cache
            .get(&online_key(user_id))
            .await
            .map_err(ServiceError::internal)?;
        let Some(value) = value else {
            return Ok(false);
        };
        match serde_json::from_str::<OnlineState>(&value) {
            Ok(state) => Ok(state.online),
            Err(err) => {
                tracing::warn!(user_id, error = %err, "online state in the cache does not decode");
                Ok(false)
            }
        }
    }

    /// Writes `user:online:{id}` for `ttl`, or removes it when `online` is false.
    pub(crate) async fn set_online(
        &self,
        user_id: i64,
        online: bool,
        last_active: i64,
        ttl: Duration,
    ) -> Result<(), ServiceError> {
        let key = online_key(user_id);
        if !online {
            return self
                .cache
                .delete(&[key])
                .await
                .map_err(ServiceError::internal);
        }
        let state = OnlineState {
            online,
            last_active,
        };
        let value = serde_json::to_string(&state).map_err(ServiceError::internal)?;
        self.cache
            .set(&key, &value, ttl)
            .await
            .map_err(ServiceError::internal)
    }

    /// Claims the resend interval of `email`; false when a code went out within it.
    pub(crate) async fn claim_resend(
        &self,
        email: &str,
        interval: Duration,
    ) -> Result<bool, ServiceError> {
        let sent_at = Utc::now().timestamp().to_string();
        self.cache
            .set_if_absent(&resend_key(email), &sent_at, interval)
            .await
            .map_err(ServiceError::internal)
    }

    /// Frees the resend interval of `email` after a code could not be stored or mailed.
    pub(crate) async fn release_resend(&self, email: &str) {
        if let Err(err) = self.cache.delete(&[resend_key(email)]).await {
            tracing::warn!(error = %err, "releasing the resend interval failed; it ends with its TTL");
        }
    }

    /// Failed logins counted under `key` (from [`login_failures_key`]) within the lockout
    /// window. A cache failure counts as none, so logins keep working while the cache is down.
    pub(crate) async fn login_failures(&self, key: &str) -> u32 {
        match self.cache.get(key).await {
            Ok(value) => value
                .and_then(|value| value.parse::<u32>().ok())
                .unwrap_or(0),
            Err(err) => {
                tracing::warn!(key, error = %err, "reading the login failure count failed");
                0
            }
        }
    }

    /// Counts one failed login under `key`. The count lives `lockout` from the first failure,
    /// and the failure that reaches `max_failures` restarts it, so the lockout lasts `lockout`
    /// from then.
    pub(crate) async fn record_login_failure(
        &self,
        key: &str,
        max_failures: u32,
        lockout: Duration,
    ) {
        let count = match self.cache.incr(key, 1, lockout).await {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(key, error = %err, "counting a login failure failed");
                return;
            }
        };
        if count == i64::from(max_failures) {
            tracing::warn!(
                key,
                failures = count,
                lockout_secs = lockout.as_secs(),
                "logins to an account from one address locked after repeated failures"
            );
            if let Err(err) = self.cache.set(key, &count.to_string(), lockout).await {
                tracing::warn!(key, error = %err, "starting the login lockout failed");
            }
        }
    }

    pub(crate) async fn reset_login_failures(&self, key: &str) {
        if let Err(err) = self.cache.delete(&[key.to_owned()]).await {
            tracing::warn!(key, error = %err, "resetting the login failure count failed");
        }
    }
}
