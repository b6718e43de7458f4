//! `GetConversations`: the caller's conversations, most recent activity first, with exact
//! unread counts and the last message time.

use std::collections::HashMap;

use beehive_generated::chat::rpc;
use beehive_generated::entity::{conversation_members, conversations};
use beehive_generated::pb::chat::{
    ConversationInfo, ConversationsResponse, GetConversationsRequest,
};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::members;

impl Handle<rpc::GetConversations> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetConversationsRequest,
    ) -> Result<ConversationsResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let memberships = conversation_members::Entity::find()
            .filter(conversation_members::Column::UserId.eq(request.user_id))
            .all(&self.db)
            .await?;
        if memberships.is_empty() {
            return Ok(ConversationsResponse::default());
        }
        let ids: Vec<i64> = memberships
            .iter()
            .map(|member| member.conversation_id)
            .collect();
        let rows: HashMap<i64, conversations::Model> = conversations::Entity::find()
            .filter(conversations::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|conversation| (conversation.id, conversation))
            .collect();
        let stats: HashMap<i64, _> = self
            .stats
            .stats(&ctx, request.user_id, &ids)
            .await?
            .into_iter()
            .map(|stats| (stats.conversation_id, stats))
            .collect();

        let mut listed: Vec<(i64, ConversationInfo)> = Vec::with_capacity(memberships.len());
        for member in &memberships {
            let Some(conversation) = rows.get(&member.conversation_id) else {
                continue;
            };
            let stats = stats.get(&conversation.id).cloned().unwrap_or_default();
            let activity = if stats.last_seq > 0 {
                stats.last_message_at
            } else {
                conversation.created_at.timestamp()
            };
            listed.push((
                activity,
                ConversationInfo {
                    conversation_id: conversation.id,
                    r#type: i32::from(conversation.r#type),
                    name: conversation.name.clone(),
                    avatar: conversation.avatar.clone().unwrap_or_default(),
                    unread_count: members::unread_count(member, &stats),
                    last_message_at: stats.last_message_at,
                },
            ));
        }
        listed.sort_by(|(a_time, a), (b_time, b)| {
            b_time
                .cmp(a_time)
                .then(b.conversation_id.cmp(&a.conversation_id))
        });
        Ok(ConversationsResponse {
            conversations: listed.into_iter().map(|(_, info)| info).collect(),
        })
    }
}
