//! `UpdateConversationInfo` (`/chat.ChatService/UpdateConversationInfo`): takes `chat.UpdateConversationInfoRequest`, returns `chat.CommonResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::UpdateConversationInfo> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::UpdateConversationInfoRequest,
    ) -> Result<beehive_generated::pb::chat::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented(
            "UpdateConversationInfo".to_owned(),
        ))
    }
}
