//! `UpdateUnreadCount` (service token): adds `increment` to a member's unread count, which
//! never goes below 0.

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversation_members;
use beehive_generated::pb::chat::{CommonResponse, UpdateUnreadCountRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};

use super::add_members::done;
use crate::members;

impl Handle<rpc::UpdateUnreadCount> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UpdateUnreadCountRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_service()?;
        let member = members::member(&self.db, request.conversation_id, request.user_id)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found(format!(
                    "member {} of conversation {}",
                    request.user_id, request.conversation_id
                ))
            })?;

        let stats = self
            .stats
            .stats(&ctx, request.user_id, &[request.conversation_id])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let counted = (stats.last_seq - member.read_seq) - (stats.sent_by_user - member.read_sent);
        // The lowest adjustment that keeps the count at 0 rather than below it.
        let floor = -counted;
        let adjust = Ord::max(
            i64::from(member.unread_adjust) + i64::from(request.increment),
            floor,
        );
        let adjust = i32::try_from(adjust).map_err(|_| {
            ServiceError::invalid("increment", "moves the unread count out of range")
        })?;

        let update = Query::update()
            .table(conversation_members::Entity)
            .value(conversation_members::Column::UnreadAdjust, adjust)
            .and_where(Expr::col(conversation_members::Column::Id).eq(member.id))
            .and_where(
                Expr::col(conversation_members::Column::UnreadAdjust).eq(member.unread_adjust),
            )
            .and_where(Expr::col(conversation_members::Column::ReadSeq).eq(member.read_seq))
            .to_owned();
        let result = self.db.execute(&update).await?;
        if result.rows_affected() == 0 {
            return Err(ServiceError::Unavailable(
                "the member's read state changed meanwhile; retry".to_owned(),
            ));
        }
        Ok(done("unread count updated"))
    }
}
