//! `VerifyCode`: checks the newest code sent to an address for a purpose without using it up;
//! a wrong guess counts toward the code's limit of wrong guesses.

use beehive_generated::pb::user::{CommonResponse, VerifyCodeRequest};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::VerifyCode> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: VerifyCodeRequest,
    ) -> Result<CommonResponse, ServiceError> {
        self.code_limiter.check(&ctx)?;
        let email = crate::normalize_email(&request.email);

        crate::codes::check(
            &self.db,
            &email,
            &request.purpose,
            &request.code,
            self.config.verification.max_attempts,
        )
        .await?;

        Ok(CommonResponse {
            success: true,
            message: "verification code is valid".to_owned(),
        })
    }
}
