//! `HandleFriendRequest` (`/friend.FriendService/HandleFriendRequest`): takes `friend.HandleFriendRequestRequest`, returns `friend.CommonResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::HandleFriendRequest> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::HandleFriendRequestRequest,
    ) -> Result<beehive_generated::pb::friend::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented(
            "HandleFriendRequest".to_owned(),
        ))
    }
}
