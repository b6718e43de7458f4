//! `GetConversationStats`: per conversation, the newest `seq`, the last message time and how
//! many messages the acting user sent; the chat service derives exact unread counts from them.

use beehive_generated::message::rpc;
use beehive_generated::pb::message::{ConversationStatsResponse, GetConversationStatsRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::store;

/// Most conversations one request may ask about.
pub const MAX_STATS_CONVERSATIONS: usize = 1000;

impl Handle<rpc::GetConversationStats> for crate::MessageService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetConversationStatsRequest,
    ) -> Result<ConversationStatsResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let mut conversation_ids = request.conversation_ids;
        conversation_ids.sort_unstable();
        conversation_ids.dedup();
        if conversation_ids.is_empty() || conversation_ids.len() > MAX_STATS_CONVERSATIONS {
            return Err(ServiceError::invalid(
                "conversation_ids",
                format!("must name 1 to {MAX_STATS_CONVERSATIONS} conversations"),
            ));
        }

        if !ctx.is_service() {
            for &conversation_id in &conversation_ids {
                self.require_member_named(
                    &ctx,
                    "conversation_ids",
                    conversation_id,
                    request.user_id,
                )
                .await?;
            }
        }

        let stats = store::stats(&self.db, request.user_id, &conversation_ids).await?;
        Ok(ConversationStatsResponse { stats })
    }
}
