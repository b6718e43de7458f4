//! `SendFriendRequest` (`/friend.FriendService/SendFriendRequest`): takes `friend.SendFriendRequestRequest`, returns `friend.SendFriendRequestResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::SendFriendRequest> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::SendFriendRequestRequest,
    ) -> Result<beehive_generated::pb::friend::SendFriendRequestResponse, ServiceError> {
        Err(ServiceError::Unimplemented("SendFriendRequest".to_owned()))
    }
}
