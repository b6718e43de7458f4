//! `GetUserInfo`: one user's profile and online state; the email only for its owner and for
//! services.

use beehive_generated::pb::user::{GetUserInfoRequest, UserInfoResponse};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetUserInfo> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetUserInfoRequest,
    ) -> Result<UserInfoResponse, ServiceError> {
        // Reading one's own profile checks the token's user with the same lookup.
        if ctx.user_id() != Some(request.user_id) {
            self.require_token_user(&ctx).await?;
        }
        let user = self
            .store
            .user_by_id(request.user_id)
            .await?
            .ok_or_else(|| crate::missing_user(&ctx, request.user_id))?;

        let online = self.store.is_online(user.id).await?;

        Ok(crate::user_info(&ctx, &user, online))
    }
}
