//! `GetMessages` (`/message.MessageService/GetMessages`): takes `message.GetMessagesRequest`, returns `message.MessagesResponse`.

use beehive_generated::message::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetMessages> for crate::MessageService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::message::GetMessagesRequest,
    ) -> Result<beehive_generated::pb::message::MessagesResponse, ServiceError> {
        Err(ServiceError::Unimplemented("GetMessages".to_owned()))
    }
}
