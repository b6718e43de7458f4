//! `DeleteFriend` (`/friend.FriendService/DeleteFriend`): takes `friend.DeleteFriendRequest`, returns `friend.CommonResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::DeleteFriend> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::DeleteFriendRequest,
    ) -> Result<beehive_generated::pb::friend::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("DeleteFriend".to_owned()))
    }
}
