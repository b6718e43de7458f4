//! `GetFriendRequests` (`/friend.FriendService/GetFriendRequests`): takes `friend.GetFriendRequestsRequest`, returns `friend.FriendRequestsResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetFriendRequests> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::GetFriendRequestsRequest,
    ) -> Result<beehive_generated::pb::friend::FriendRequestsResponse, ServiceError> {
        Err(ServiceError::Unimplemented("GetFriendRequests".to_owned()))
    }
}
