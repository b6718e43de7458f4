//! Rejects user tokens whose user does not exist.
//!
//! A token stays valid for its whole lifetime even when its user is gone, so a server that is
//! given a [`TokenUsers`] (see [`crate::server::ServerBuilder::token_users`]) looks the token's
//! user up in a [`UserDirectory`] before an RPC with [`crate::rpc::Access::Authenticated`]
//! runs. Lookup results are cached per user id for a short TTL, so a client's repeated calls
//! cost one cache read each. The verified-token cache of
//! [`crate::auth::Authenticator::verify`] works as before, because this check runs after it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::context::{CallContext, Caller};
use crate::error::ServiceError;

/// How long a lookup result of the [`UserDirectory`] is reused, found or not. A deleted
/// user's tokens keep working for up to this long.
pub const TOKEN_USERS_TTL: Duration = Duration::from_secs(30);
/// Maximum number of user ids whose lookup result is cached.
const TOKEN_USERS_CAPACITY: u64 = 100_000;

/// Source of user lookups for a server, usually the user service.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// Returns whether a user with id `user_id` exists. `ctx` is the call being checked, for its
    /// deadline and trace id.
    async fn user_exists(&self, ctx: &CallContext, user_id: i64) -> Result<bool, ServiceError>;
}

/// Checker of a call's token user against a [`UserDirectory`], with a cache of lookup results.
pub struct TokenUsers {
    directory: Arc<dyn UserDirectory>,
    known: moka::future::Cache<i64, bool>,
}

impl std::fmt::Debug for TokenUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenUsers")
            .field("cached", &self.known.entry_count())
            .finish_non_exhaustive()
    }
}

impl TokenUsers {
    /// Builds a checker whose lookup results are cached for `ttl` (see [`TOKEN_USERS_TTL`]).
    pub fn new(directory: Arc<dyn UserDirectory>, ttl: Duration) -> Self {
        Self {
            directory,
            known: moka::future::Cache::builder()
                .max_capacity(TOKEN_USERS_CAPACITY)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Rejects a user caller whose user does not exist with UNAUTHENTICATED. Services, `trust`
    /// mode and anonymous callers pass, because the access rule already handled them.
    ///
    /// Concurrent first calls of one user share one lookup. A failed lookup is logged and not
    /// cached, and the call goes ahead.
    /// NOTE: failing open keeps every service working while the user service is down, at the
    /// cost of accepting a deleted user's token during that time.
    pub async fn check(&self, ctx: &CallContext) -> Result<(), ServiceError> {
        let Caller::User(user_id) = ctx.caller else {
            return Ok(());
        };
        let lookup = self.directory.user_exists(ctx, user_id);
        match self.known.try_get_with(user_id, lookup).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(missing_token_user(user_id)),
            Err(err) => {
                tracing::warn!(
                    user_id,
                    trace_id = %ctx.trace_id,
                    error = %err,
                    "looking up the token's user failed, so the call runs unchecked"
                );
                Ok(())
            }
        }
    }
}

/// Builds the UNAUTHENTICATED error for a token whose user `user_id` does not exist.
pub fn missing_token_user(user_id: i64) -> ServiceError {
    ServiceError::unauthenticated(format!(
        "the token's user {user_id} does not exist; log in again"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Users 1 to 9 exist, user 13 fails to load; counts lookups.
    #[derive(Default)]
    struct Directory {
        lookups: AtomicUsize,
    }

    #[async_trait]
    impl UserDirectory for Directory {
        async fn user_exists(
            &self,
            _ctx: &CallContext,
            user_id: i64,
        ) -> Result<bool, ServiceError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if user_id == 13 {
                return Err(ServiceError::Unavailable("user service down".to_owned()));
            }
            Ok((1..10).contains(&user_id))
        }
    }

    fn context(caller: Caller) -> CallContext {
        CallContext::internal(caller, Duration::from_secs(5))
    }

    fn checker() -> (Arc<Directory>, TokenUsers) {
        let directory = Arc::new(Directory::default());
        let users = TokenUsers::new(directory.clone(), TOKEN_USERS_TTL);
        (directory, users)
    }

    #[tokio::test]
    async fn existing_user_passes_and_is_cached() {
        let (directory, users) = checker();
        for _ in 0..3 {
            let checked = users.check(&context(Caller::User(4))).await;
            assert!(checked.is_ok(), "{checked:?}");
        }
        assert_eq!(directory.lookups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn missing_user_is_unauthenticated() {
        let (directory, users) = checker();
        for _ in 0..2 {
            let err = users
                .check(&context(Caller::User(500)))
                .await
                .expect_err("missing user");
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
            assert_eq!(
                err.to_string(),
                "unauthenticated: the token's user 500 does not exist; log in again"
            );
        }
        assert_eq!(directory.lookups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failed_lookup_passes_uncached() {
        let (directory, users) = checker();
        for _ in 0..2 {
            let checked = users.check(&context(Caller::User(13))).await;
            assert!(checked.is_ok(), "{checked:?}");
        }
        assert_eq!(directory.lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn other_callers_skip_lookup() {
        let (directory, users) = checker();
        for caller in [Caller::Service, Caller::Trusted, Caller::Anonymous] {
            let checked = users.check(&context(caller)).await;
            assert!(checked.is_ok(), "{checked:?}");
        }
        assert_eq!(directory.lookups.load(Ordering::SeqCst), 0);
    }
}
