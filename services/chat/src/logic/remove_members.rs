//! `RemoveMembers`: the owner or an admin removes members of a group; the owner can never be
//! removed, and an admin removes ordinary members only. A member who names only themselves
//! leaves the group, whatever their role, except the owner (FAILED_PRECONDITION).

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversation_members;
use beehive_generated::pb::chat::{CommonResponse, RemoveMembersRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::add_members::done;
use crate::{ROLE_ADMIN, ROLE_OWNER, TYPE_GROUP, members};

impl Handle<rpc::RemoveMembers> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: RemoveMembersRequest,
    ) -> Result<CommonResponse, ServiceError> {
        if let Some(caller) = ctx.user_id()
            && !request.user_ids.is_empty()
            && request.user_ids.iter().all(|&id| id == caller)
        {
            return self.leave(request.conversation_id, caller).await;
        }
        let (conversation, manager) = self.require_manager(&ctx, request.conversation_id).await?;

        let targets = conversation_members::Entity::find()
            .filter(conversation_members::Column::ConversationId.eq(conversation.id))
            .filter(conversation_members::Column::UserId.is_in(request.user_ids.iter().copied()))
            .all(&self.db)
            .await?;
        if let Some(owner) = targets.iter().find(|member| member.role == ROLE_OWNER) {
            return Err(ServiceError::failed_precondition(format!(
                "user {} owns conversation {} and cannot be removed",
                owner.user_id, conversation.id
            )));
        }
        if manager.role() < ROLE_OWNER
            && let Some(admin) = targets.iter().find(|member| member.role >= ROLE_ADMIN)
        {
            return Err(ServiceError::permission_denied(format!(
                "only the owner removes admin {}",
                admin.user_id
            )));
        }
        if targets.is_empty() {
            return Ok(done("no members removed"));
        }

        let ids: Vec<i64> = targets.iter().map(|member| member.id).collect();
        let removed = conversation_members::Entity::delete_many()
            .filter(conversation_members::Column::Id.is_in(ids))
            .exec(&self.db)
            .await?;
        Ok(done(&format!("removed {} members", removed.rows_affected)))
    }
}

impl crate::ChatService {
    /// Removes `user_id` from a group at their own request. The owner cannot leave.
    async fn leave(
        &self,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<CommonResponse, ServiceError> {
        let conversation = members::conversation(&self.db, conversation_id).await?;
        let member = members::require_member(&self.db, conversation_id, user_id).await?;
        if conversation.r#type != TYPE_GROUP {
            return Err(ServiceError::failed_precondition(format!(
                "conversation {conversation_id} is a single chat; only groups can be left"
            )));
        }
        if member.role == ROLE_OWNER {
            return Err(ServiceError::failed_precondition(format!(
                "user {user_id} owns conversation {conversation_id} and cannot leave it"
            )));
        }
        conversation_members::Entity::delete_by_id(member.id)
            .exec(&self.db)
            .await?;
        Ok(done("left the conversation"))
    }
}
