//! `GetMessageDetail`: one message, for members of its conversation.

use beehive_generated::entity::messages;
use beehive_generated::message::rpc;
use beehive_generated::pb::message::{GetMessageDetailRequest, MessageInfo};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::EntityTrait;

use crate::store;

impl Handle<rpc::GetMessageDetail> for crate::MessageService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetMessageDetailRequest,
    ) -> Result<MessageInfo, ServiceError> {
        ctx.require_authenticated()?;

        let message = messages::Entity::find_by_id(request.message_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found_field("message_id", format!("message {}", request.message_id))
            })?;

        self.require_reader(&ctx, message.conversation_id).await?;
        Ok(store::message_info(&message))
    }
}
