//! `GetConversationDetail`: a conversation with its members, for members only.

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversation_members;
use beehive_generated::pb::chat::{
    ConversationDetailResponse, GetConversationDetailRequest, MemberInfo,
};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::members;

impl Handle<rpc::GetConversationDetail> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetConversationDetailRequest,
    ) -> Result<ConversationDetailResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let conversation = members::conversation(&self.db, request.conversation_id).await?;
        members::require_member(&self.db, conversation.id, request.user_id).await?;
        let rows = conversation_members::Entity::find()
            .filter(conversation_members::Column::ConversationId.eq(conversation.id))
            .order_by_asc(conversation_members::Column::Id)
            .all(&self.db)
            .await?;

        Ok(ConversationDetailResponse {
            conversation_id: conversation.id,
            r#type: i32::from(conversation.r#type),
            name: conversation.name,
            avatar: conversation.avatar.unwrap_or_default(),
            owner_id: conversation.owner_id,
            members: rows
                .into_iter()
                .map(|member| MemberInfo {
                    user_id: member.user_id,
                    role: i32::from(member.role),
                    joined_at: member.joined_at.timestamp(),
                })
                .collect(),
        })
    }
}
