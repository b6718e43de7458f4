//! `GetConversations` (`/chat.ChatService/GetConversations`): takes `chat.GetConversationsRequest`, returns `chat.ConversationsResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetConversations> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::GetConversationsRequest,
    ) -> Result<beehive_generated::pb::chat::ConversationsResponse, ServiceError> {
        Err(ServiceError::Unimplemented("GetConversations".to_owned()))
    }
}
