//! `GetConversationDetail` (`/chat.ChatService/GetConversationDetail`): takes `chat.GetConversationDetailRequest`, returns `chat.ConversationDetailResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetConversationDetail> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::GetConversationDetailRequest,
    ) -> Result<beehive_generated::pb::chat::ConversationDetailResponse, ServiceError> {
        Err(ServiceError::Unimplemented(
            "GetConversationDetail".to_owned(),
        ))
    }
}
