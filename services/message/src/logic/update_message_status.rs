//! `UpdateMessageStatus` (`/message.MessageService/UpdateMessageStatus`): takes `message.UpdateMessageStatusRequest`, returns `message.CommonResponse`.

use beehive_generated::message::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::UpdateMessageStatus> for crate::MessageService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::message::UpdateMessageStatusRequest,
    ) -> Result<beehive_generated::pb::message::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented(
            "UpdateMessageStatus".to_owned(),
        ))
    }
}
