//! `MarkRead`: moves the caller's read marker to the conversation's newest message, so the
//! caller's unread count becomes 0.

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversation_members;
use beehive_generated::pb::chat::{CommonResponse, MarkReadRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};

use super::add_members::done;
use crate::members;

impl Handle<rpc::MarkRead> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: MarkReadRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let member =
            members::require_member(&self.db, request.conversation_id, request.user_id).await?;

        let stats = self
            .stats
            .stats(&ctx, request.user_id, &[request.conversation_id])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();

        // The marker only moves forward, so a slow MarkRead never undoes a newer one.
        let update = Query::update()
            .table(conversation_members::Entity)
            .value(conversation_members::Column::ReadSeq, stats.last_seq)
            .value(conversation_members::Column::ReadSent, stats.sent_by_user)
            .value(conversation_members::Column::UnreadAdjust, 0)
            .value(conversation_members::Column::LastReadAt, Utc::now())
            .and_where(Expr::col(conversation_members::Column::Id).eq(member.id))
            .and_where(Expr::col(conversation_members::Column::ReadSeq).lte(stats.last_seq))
            .to_owned();
        self.db.execute(&update).await?;
        Ok(done("marked read"))
    }
}
