//! `UpdateUnreadCount` (`/chat.ChatService/UpdateUnreadCount`): takes `chat.UpdateUnreadCountRequest`, returns `chat.CommonResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::UpdateUnreadCount> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::UpdateUnreadCountRequest,
    ) -> Result<beehive_generated::pb::chat::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("UpdateUnreadCount".to_owned()))
    }
}
