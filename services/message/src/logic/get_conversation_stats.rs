//! `GetConversationStats` (`/message.MessageService/GetConversationStats`): takes `message.GetConversationStatsRequest`, returns `message.ConversationStatsResponse`.

use beehive_generated::message::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetConversationStats> for crate::MessageService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::message::GetConversationStatsRequest,
    ) -> Result<beehive_generated::pb::message::ConversationStatsResponse, ServiceError> {
        Err(ServiceError::Unimplemented(
            "GetConversationStats".to_owned(),
        ))
    }
}
