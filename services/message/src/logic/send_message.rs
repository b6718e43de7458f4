//! `SendMessage` (`/message.MessageService/SendMessage`): takes `message.SendMessageRequest`, returns `message.SendMessageResponse`.

use beehive_generated::message::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::SendMessage> for crate::MessageService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::message::SendMessageRequest,
    ) -> Result<beehive_generated::pb::message::SendMessageResponse, ServiceError> {
        Err(ServiceError::Unimplemented("SendMessage".to_owned()))
    }
}
