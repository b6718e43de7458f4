//! `UpdateFriendRemark` (`/friend.FriendService/UpdateFriendRemark`): takes `friend.UpdateFriendRemarkRequest`, returns `friend.CommonResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::UpdateFriendRemark> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::UpdateFriendRemarkRequest,
    ) -> Result<beehive_generated::pb::friend::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("UpdateFriendRemark".to_owned()))
    }
}
