//! `Register`: creates an account from a username, an email, a password and the `register`
//! code mailed to that email; returns the user id and a 7-day token.

use beehive_generated::entity::users;
use beehive_generated::pb::user::{RegisterRequest, RegisterResponse};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, TransactionTrait};

/// Purpose a code must have been sent for to register with it.
const PURPOSE: &str = "register";
/// Account status of a new user: active.
const STATUS_ACTIVE: i16 = 1;

impl Handle<rpc::Register> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: RegisterRequest,
    ) -> Result<RegisterResponse, ServiceError> {
        self.register_limiter.check(&ctx)?;
        let email = crate::normalize_email(&request.email);
        let max_attempts = self.config.verification.max_attempts;

        let code =
            crate::codes::check(&self.db, &email, PURPOSE, &request.code, max_attempts).await?;
        if self
            .store
            .user_by_username(&request.username)
            .await?
            .is_some()
        {
            return Err(ServiceError::already_exists(
                "username",
                "this username is already taken",
            ));
        }
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(ServiceError::already_exists(
                "email",
                "this email is already taken",
            ));
        }

        let password_hash = self.hasher.hash(request.password, ctx.deadline).await?;
        let now = Utc::now();
        let row = users::ActiveModel {
            username: Set(request.username.clone()),
            username_key: Set(Some(crate::username_key(&request.username))),
            email: Set(email.clone()),
            password_hash: Set(password_hash),
            nickname: Set(request.username.clone()),
            avatar_url: Set(None),
            status: Set(STATUS_ACTIVE),
            email_verified: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(None),
            ..Default::default()
        };
        // The code is used up in the transaction that inserts the user: a lost race on the
        // username or email rolls both back and leaves the code usable.
        let txn = self.db.begin().await?;
        if !crate::codes::consume(&txn, code.id, max_attempts).await? {
            txn.rollback().await?;
            return Err(crate::codes::invalid_code());
        }
        let user = match row.insert(&txn).await {
            Ok(user) => user,
            Err(err) => {
                txn.rollback().await?;
                return Err(crate::map_insert_error(err));
            }
        };
        txn.commit().await?;
        self.store.user_inserted(&user).await;

        let token = self.authenticator.issue_user_token(user.id)?;
        Ok(RegisterResponse {
            user_id: user.id,
            token,
        })
    }
}
