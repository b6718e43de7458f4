//! `IsFriend`: whether `friend_id` is in the user's friend list.

use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{IsFriendRequest, IsFriendResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::IsFriend> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: IsFriendRequest,
    ) -> Result<IsFriendResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let friends = self.lists.get(request.user_id).await?;

        let is_friend = friends.iter().any(|row| row.friend_id == request.friend_id);
        Ok(IsFriendResponse { is_friend })
    }
}
