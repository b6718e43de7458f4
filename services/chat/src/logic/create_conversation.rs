//! `CreateConversation` (`/chat.ChatService/CreateConversation`): takes `chat.CreateConversationRequest`, returns `chat.CreateConversationResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::CreateConversation> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::CreateConversationRequest,
    ) -> Result<beehive_generated::pb::chat::CreateConversationResponse, ServiceError> {
        Err(ServiceError::Unimplemented("CreateConversation".to_owned()))
    }
}
