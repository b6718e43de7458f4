//! `UpdateOnlineStatus`: sets `user:online:{id}` (`{"online":true,"last_active":<unix s>}`,
//! 5-minute TTL, renewed by each call) or removes it; for another user it needs a service token.

use beehive_generated::pb::user::{CommonResponse, UpdateOnlineStatusRequest};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;

impl Handle<rpc::UpdateOnlineStatus> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UpdateOnlineStatusRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        if self.store.user_by_id(request.user_id).await?.is_none() {
            return Err(crate::missing_user(&ctx, request.user_id));
        }

        let now = Utc::now().timestamp();
        self.store
            .set_online(request.user_id, request.online, now, crate::ONLINE_TTL)
            .await?;

        Ok(CommonResponse {
            success: true,
            message: if request.online { "online" } else { "offline" }.to_owned(),
        })
    }
}
