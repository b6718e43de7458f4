//! `UpdateUserInfo`: changes the caller's nickname and avatar URL; an empty field leaves the
//! stored value unchanged, and the next read shows the change.

use beehive_generated::pb::user::{CommonResponse, UpdateUserInfoRequest};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::UpdateUserInfo> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UpdateUserInfoRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let nickname = Some(request.nickname).filter(|value| !value.is_empty());
        let avatar_url = Some(request.avatar_url).filter(|value| !value.is_empty());

        let user = self
            .store
            .user_by_id(request.user_id)
            .await?
            .ok_or_else(|| crate::missing_user(&ctx, request.user_id))?;

        if nickname.is_some() || avatar_url.is_some() {
            self.store
                .update_profile(&user, nickname, avatar_url)
                .await?;
        }

        Ok(CommonResponse {
            success: true,
            message: "profile updated".to_owned(),
        })
    }
}
