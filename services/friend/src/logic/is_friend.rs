//! `IsFriend` (`/friend.FriendService/IsFriend`): takes `friend.IsFriendRequest`, returns `friend.IsFriendResponse`.

use beehive_generated::friend::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::IsFriend> for crate::FriendService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::friend::IsFriendRequest,
    ) -> Result<beehive_generated::pb::friend::IsFriendResponse, ServiceError> {
        Err(ServiceError::Unimplemented("IsFriend".to_owned()))
    }
}
