//! Hand-written logic of the user service (port 8001): accounts, verification codes, logins,
//! profiles and online status.
//!
//! Build it with [`UserService::new`] from a [`UserDeps`] and serve it with
//! `beehive_generated::user::server(Arc::new(service), limits)`. It starts no background task:
//! codes and lockouts expire by their timestamps and cache TTLs.
//!
//! Decisions where the contracts are silent:
//! - Emails are trimmed and lowercased before they are stored or looked up, so `A@x.io` and
//!   `a@x.io` are one address. Usernames are stored as typed and are unique ignoring case:
//!   the unique column `username_key` holds the lowercase form, so `Alice` blocks `alice`, and
//!   Login finds `Alice` by `alice`.
//! - Only the newest code of an (email, purpose) pair counts; sending a new one replaces the
//!   old. Wrong guesses are counted on the code's row; the fifth burns it
//!   (`verification.max_attempts`). A burnt, used or expired code is reported like a wrong one.
//! - The resend interval is per address over all purposes, held by a cache key set only when
//!   absent (`user:code:resend:{email}`), so two concurrent sends produce one code.
//! - Register checks the code before it spends bcrypt work; the code is used up in the same
//!   transaction that inserts the user, so a taken name or email leaves the code usable. A new
//!   user's nickname is their username and `email_verified` is true (the code proved it).
//! - bcrypt runs on the blocking pool, at most one hash per core at a time; a call whose
//!   deadline would pass while it waits for a core fails with RESOURCE_EXHAUSTED unhashed.
//! - Failed logins are counted per (account, client IP address) in the cache
//!   (`user:login:failures:{ip}:{account}`), for unknown accounts exactly as for known ones.
//!   After `login.max_failures` failures in a row, logins to that account from that address get
//!   RESOURCE_EXHAUSTED for `login.lockout_secs`, even with the right password, while the owner
//!   elsewhere can still log in. A success resets the count. The error is the same whether the
//!   account exists or not, and unknown accounts cost one bcrypt verification like known ones.
//! - The email in `UserInfoResponse` is filled only for the user themself and for services
//!   (and in `trust` mode); others get an empty string.
//! - UpdateOnlineStatus with `online: false` deletes `user:online:{id}`.
//! - A correctly signed user token whose user has no row (never had one, or was deleted
//!   through the `users` model) is UNAUTHENTICATED on every RPC of this service that needs a
//!   caller. The lookup goes through the cached `users` model, so a repeated call costs a cache
//!   read, and a missing user is cached as a not-found placeholder. A row deleted by hand,
//!   bypassing the model, stays visible until its cache entry expires.
//!   The other services check the same through `beehive_runtime::token_users` when their
//!   server is given one, as the `beehive` binary does.

beehive_generated::user_logic_modules!();

mod codes;
mod password;
mod store;

use std::sync::Arc;
use std::time::Duration;

use beehive_generated::entity::users;
use beehive_generated::pb::user::UserInfoResponse;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::cache::Cache;
use beehive_runtime::config::Config;
use beehive_runtime::mail::Mailer;
use beehive_runtime::rate_limit::RateLimiter;
use beehive_runtime::token_users::missing_token_user;
use beehive_runtime::{CallContext, ServiceError};
use sea_orm::DatabaseConnection;

pub use password::PasswordHasher;
pub use store::{OnlineState, login_failures_key, online_key, resend_key};

/// Lifetime of `user:online:{id}`; heartbeats renew it.
pub const ONLINE_TTL: Duration = Duration::from_secs(5 * 60);

/// Dependencies of [`UserService::new`].
#[derive(Clone)]
pub struct UserDeps {
    pub config: Arc<Config>,
    /// Connection to the database holding `users` and `email_verification_codes`, migrated
    /// with `UserMigrator`.
    pub db: DatabaseConnection,
    /// Database name, which qualifies the cache keys of the cached `users` model.
    pub db_name: String,
    pub cache: Arc<dyn Cache>,
    pub mailer: Arc<dyn Mailer>,
    /// Issues the 7-day user tokens returned by Register and Login.
    pub authenticator: Arc<Authenticator>,
}

/// Logic of `UserService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct UserService {
    config: Arc<Config>,
    db: DatabaseConnection,
    store: store::Store,
    mailer: Arc<dyn Mailer>,
    authenticator: Arc<Authenticator>,
    hasher: PasswordHasher,
    code_limiter: RateLimiter,
    login_limiter: RateLimiter,
    register_limiter: RateLimiter,
}

impl UserService {
    pub fn new(deps: UserDeps) -> Self {
        let limits = &deps.config.rate_limit;
        Self {
            hasher: PasswordHasher::new(deps.config.auth.bcrypt_cost),
            code_limiter: RateLimiter::new(
                "verification code requests",
                limits.verification_codes_per_sec,
            ),
            login_limiter: RateLimiter::new("logins", limits.logins_per_sec),
            register_limiter: RateLimiter::new("registrations", limits.registrations_per_sec),
            store: store::Store::new(deps.db.clone(), deps.db_name, deps.cache),
            config: deps.config,
            db: deps.db,
            mailer: deps.mailer,
            authenticator: deps.authenticator,
        }
    }

    /// Lifetime of a verification code.
    fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.config.verification.code_ttl_secs)
    }

    /// Rejects a user token whose user does not exist with UNAUTHENTICATED. Services and
    /// `trust` mode pass.
    async fn require_token_user(&self, ctx: &CallContext) -> Result<(), ServiceError> {
        if let Some(user_id) = ctx.user_id()
            && self.store.user_by_id(user_id).await?.is_none()
        {
            return Err(missing_token_user(user_id));
        }
        Ok(())
    }
}

/// Builds the error for a missing user `user_id`: UNAUTHENTICATED when the caller's token
/// names that user, else NOT_FOUND.
fn missing_user(ctx: &CallContext, user_id: i64) -> ServiceError {
    if ctx.user_id() == Some(user_id) {
        missing_token_user(user_id)
    } else {
        ServiceError::not_found(format!("user {user_id}"))
    }
}

/// Normalises an email for storage and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Returns the value of `users.username_key` for `username`: its lowercase form, which makes
/// usernames unique and found case-insensitively.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// Normalises a Login `account`: an email (it contains `@`) as [`normalize_email`] does, a
/// username by trimming and lowercasing it.
pub fn normalize_account(account: &str) -> String {
    if account.contains('@') {
        normalize_email(account)
    } else {
        username_key(account.trim())
    }
}

/// Builds the profile message; the email only goes to its owner and to services.
fn user_info(ctx: &CallContext, user: &users::Model, online: bool) -> UserInfoResponse {
    let may_see_email = ctx.is_service() || ctx.user_id() == Some(user.id);
    UserInfoResponse {
        user_id: user.id,
        username: user.username.clone(),
        email: if may_see_email {
            user.email.clone()
        } else {
            String::new()
        },
        nickname: user.nickname.clone(),
        avatar: user.avatar_url.clone().unwrap_or_default(),
        status: i32::from(user.status),
        online,
        last_login_at: user.last_login_at.map_or(0, |at| at.timestamp()),
        created_at: user.created_at.timestamp(),
    }
}

/// Maps a failed user insert: a unique index violation names the taken field.
fn map_insert_error(err: sea_orm::DbErr) -> ServiceError {
    if let Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
        let field = if message.contains("username") {
            "username"
        } else if message.contains("email") {
            "email"
        } else {
            return ServiceError::internal(err);
        };
        return ServiceError::already_exists(field, format!("this {field} is already taken"));
    }
    ServiceError::internal(err)
}
