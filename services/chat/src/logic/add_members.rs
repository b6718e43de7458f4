//! `AddMembers` (`/chat.ChatService/AddMembers`): takes `chat.AddMembersRequest`, returns `chat.CommonResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::AddMembers> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::AddMembersRequest,
    ) -> Result<beehive_generated::pb::chat::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("AddMembers".to_owned()))
    }
}
