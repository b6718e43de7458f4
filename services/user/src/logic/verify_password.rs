//! `VerifyPassword`: tells whether a password is the user's current one (for re-authentication
//! before sensitive changes); only the user themself or a service may ask.

use beehive_generated::pb::user::{VerifyPasswordRequest, VerifyPasswordResponse};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::VerifyPassword> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: VerifyPasswordRequest,
    ) -> Result<VerifyPasswordResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let user = self
            .store
            .user_by_id(request.user_id)
            .await?
            .ok_or_else(|| crate::missing_user(&ctx, request.user_id))?;

        let valid = self
            .hasher
            .verify(request.password, user.password_hash, ctx.deadline)
            .await?;

        Ok(VerifyPasswordResponse { valid })
    }
}
