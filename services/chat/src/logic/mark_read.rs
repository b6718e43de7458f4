//! `MarkRead` (`/chat.ChatService/MarkRead`): takes `chat.MarkReadRequest`, returns `chat.CommonResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::MarkRead> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::MarkReadRequest,
    ) -> Result<beehive_generated::pb::chat::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("MarkRead".to_owned()))
    }
}
