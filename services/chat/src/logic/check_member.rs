//! `CheckMember` (`/chat.ChatService/CheckMember`): takes `chat.CheckMemberRequest`, returns `chat.CheckMemberResponse`.

use beehive_generated::chat::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::CheckMember> for crate::ChatService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::chat::CheckMemberRequest,
    ) -> Result<beehive_generated::pb::chat::CheckMemberResponse, ServiceError> {
        Err(ServiceError::Unimplemented("CheckMember".to_owned()))
    }
}
