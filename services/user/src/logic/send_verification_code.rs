//! `SendVerificationCode`: mails a 6-digit code for a purpose (`register`, `reset_password`,
//! `bind_email`), valid `verification.code_ttl_secs`; one code per address per
//! `verification.resend_secs`, a second request within it is RESOURCE_EXHAUSTED and sends nothing.

use std::time::Duration;

use beehive_generated::entity::email_verification_codes as codes;
use beehive_generated::pb::user::{CommonResponse, SendCodeRequest};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use rand::Rng;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

/// Codes are drawn uniformly from 000000 to 999999.
const CODE_SPACE: u32 = 1_000_000;
const MAIL_SUBJECT: &str = "Your Beehive verification code";

impl Handle<rpc::SendVerificationCode> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: SendCodeRequest,
    ) -> Result<CommonResponse, ServiceError> {
        self.code_limiter.check(&ctx)?;
        let email = crate::normalize_email(&request.email);
        let resend = Duration::from_secs(self.config.verification.resend_secs);

        if !self.store.claim_resend(&email, resend).await? {
            return Err(ServiceError::resource_exhausted(format!(
                "a code was sent to this address less than {} seconds ago; wait before asking again",
                resend.as_secs()
            )));
        }

        // `rand::rng()` is a ChaCha-based CSPRNG seeded from the operating system.
        let code = format!("{:06}", rand::rng().random_range(0..CODE_SPACE));
        let now = Utc::now();
        let ttl = self.code_ttl();
        let expired_at = chrono::TimeDelta::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
        let row = codes::ActiveModel {
            email: Set(email.clone()),
            code: Set(code.clone()),
            purpose: Set(request.purpose.clone()),
            expired_at: Set(expired_at),
            used: Set(false),
            attempts: Set(0),
            created_at: Set(now),
            ..Default::default()
        };
        let inserted = match row.insert(&self.db).await {
            Ok(inserted) => inserted,
            Err(err) => {
                self.store.release_resend(&email).await;
                return Err(err.into());
            }
        };

        let body = format!(
            "{code} is your Beehive verification code ({}). It expires in {} minutes.\n\nIf you did not ask for it, ignore this message.\n",
            request.purpose,
            ttl.as_secs().div_ceil(60)
        );
        if let Err(err) = self.mailer.send(&email, MAIL_SUBJECT, &body).await {
            tracing::error!(error = %err, purpose = %request.purpose, "sending a verification code failed");
            if let Err(err) = codes::Entity::delete_by_id(inserted.id)
                .exec(&self.db)
                .await
            {
                tracing::error!(error = %err, code_id = inserted.id, "removing an unsent verification code failed");
            }
            self.store.release_resend(&email).await;
            return Err(ServiceError::Unavailable(
                "the verification mail could not be sent; retry later".to_owned(),
            ));
        }

        Ok(CommonResponse {
            success: true,
            message: "verification code sent".to_owned(),
        })
    }
}
