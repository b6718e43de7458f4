//! `UpdateMessageStatus`: a member other than the sender moves a message's status forward
//! (0 sending → 1 delivered → 2 read); it never goes back.

use beehive_generated::entity::messages;
use beehive_generated::message::rpc;
use beehive_generated::pb::message::{CommonResponse, UpdateMessageStatusRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, EntityTrait};

impl Handle<rpc::UpdateMessageStatus> for crate::MessageService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UpdateMessageStatusRequest,
    ) -> Result<CommonResponse, ServiceError> {
        let status = i16::try_from(request.status)
            .map_err(|_| ServiceError::invalid("status", "must be 0, 1 or 2"))?;

        let message = messages::Entity::find_by_id(request.message_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found_field("message_id", format!("message {}", request.message_id))
            })?;
        if let Some(user_id) = ctx.user_id() {
            if user_id == message.sender_id {
                return Err(ServiceError::permission_denied(
                    "the sender cannot change the status of their own message",
                ));
            }
            self.require_member(&ctx, message.conversation_id, user_id)
                .await?;
        } else {
            ctx.require_service()?;
        }

        if status < message.status {
            return Err(ServiceError::failed_precondition(format!(
                "message {} has status {}; a status never goes back",
                message.id, message.status
            )));
        }
        if status == message.status {
            return Ok(updated("status unchanged"));
        }

        let update = Query::update()
            .table(messages::Entity)
            .value(messages::Column::Status, status)
            .and_where(Expr::col(messages::Column::Id).eq(message.id))
            .and_where(Expr::col(messages::Column::Status).lt(status))
            .to_owned();
        self.db.execute(&update).await?;
        // NOTE: a reader refilling the hot cache from a snapshot taken before this update may
        // store the old status again; it lasts until the conversation's next send or the TTL.
        self.hot.forget(message.conversation_id).await;
        Ok(updated("status updated"))
    }
}

fn updated(message: &str) -> CommonResponse {
    CommonResponse {
        success: true,
        message: message.to_owned(),
    }
}
