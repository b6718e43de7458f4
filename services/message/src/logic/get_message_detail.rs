//! `GetMessageDetail` (`/message.MessageService/GetMessageDetail`): takes `message.GetMessageDetailRequest`, returns `message.MessageInfo`.

use beehive_generated::message::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::GetMessageDetail> for crate::MessageService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::message::GetMessageDetailRequest,
    ) -> Result<beehive_generated::pb::message::MessageInfo, ServiceError> {
        Err(ServiceError::Unimplemented("GetMessageDetail".to_owned()))
    }
}
