//! `RemoveMembers` (`/chat.ChatService/RemoveMembers`): takes `chat.RemoveMembersRequest`, returns `chat.CommonResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::RemoveMembers> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::RemoveMembersRequest,
    ) -> Result<beehive_generated::pb::chat::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("RemoveMembers".to_owned()))
    }
}
