//! `GetFriends`: the user's friends with the user's remarks, oldest friendship first, read
//! through the per-user friend-list cache.

use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{FriendInfo, FriendsResponse, GetFriendsRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetFriends> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetFriendsRequest,
    ) -> Result<FriendsResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let rows = self.lists.get(request.user_id).await?;

        let friends = rows
            .into_iter()
            .map(|row| FriendInfo {
                user_id: row.user_id,
                friend_id: row.friend_id,
                remark: row.remark.unwrap_or_default(),
                created_at: row.created_at.timestamp(),
            })
            .collect();
        Ok(FriendsResponse { friends })
    }
}
