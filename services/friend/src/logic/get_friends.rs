//! `GetFriends` (`/friend.FriendService/GetFriends`): takes `friend.GetFriendsRequest`, returns `friend.FriendsResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetFriends> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::GetFriendsRequest,
    ) -> Result<beehive_generated::pb::friend::FriendsResponse, ServiceError> {
        Err(ServiceError::Unimplemented("GetFriends".to_owned()))
    }
}
