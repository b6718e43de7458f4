//! `Login`: authenticates by username or email and password; returns the profile and a 7-day
//! token, records the login time and marks the user online.

use std::time::Duration;

use beehive_generated::pb::user::{LoginRequest, LoginResponse};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;

use crate::store::login_failures_key;

/// The one message for an unknown account and a wrong password.
const BAD_CREDENTIALS: &str = "wrong account or password";
/// Account status of a disabled user.
const STATUS_DISABLED: i16 = 2;

impl Handle<rpc::Login> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: LoginRequest,
    ) -> Result<LoginResponse, ServiceError> {
        self.login_limiter.check(&ctx)?;
        let account = crate::normalize_account(&request.account);
        let failures_key = login_failures_key(&account, ctx.remote_addr.map(|addr| addr.ip()));
        let login = &self.config.login;
        let lockout = Duration::from_secs(login.lockout_secs);
        // Checked before the lookup and counted for unknown accounts too, so a locked account
        // and an unknown one return the same error.
        if login.max_failures > 0
            && self.store.login_failures(&failures_key).await >= login.max_failures
        {
            return Err(ServiceError::resource_exhausted(format!(
                "too many failed logins to this account from this address, retry in {} seconds",
                lockout.as_secs()
            )));
        }

        let user = if account.contains('@') {
            self.store.user_by_email(&account).await?
        } else {
            self.store.user_by_username(request.account.trim()).await?
        };
        let valid = match &user {
            Some(user) => {
                self.hasher
                    .verify(request.password, user.password_hash.clone(), ctx.deadline)
                    .await?
            }
            None => {
                self.hasher
                    .verify_decoy(request.password, ctx.deadline)
                    .await?;
                false
            }
        };
        let Some(user) = user.filter(|_| valid) else {
            self.store
                .record_login_failure(&failures_key, login.max_failures, lockout)
                .await;
            return Err(ServiceError::unauthenticated(BAD_CREDENTIALS));
        };
        if user.status == STATUS_DISABLED {
            return Err(ServiceError::permission_denied("this account is disabled"));
        }

        self.store.reset_login_failures(&failures_key).await;
        let now = Utc::now();
        let user = self.store.record_login(&user, now).await?;
        self.store
            .set_online(user.id, true, now.timestamp(), crate::ONLINE_TTL)
            .await?;

        let token = self.authenticator.issue_user_token(user.id)?;
        Ok(LoginResponse {
            user_id: user.id,
            username: user.username,
            nickname: user.nickname,
            avatar: user.avatar_url.unwrap_or_default(),
            token,
        })
    }
}
