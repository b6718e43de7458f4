//! `UpdateConversationInfo`: the owner or an admin renames a group or changes its avatar; an
//! empty field leaves the stored value unchanged.

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversations;
use beehive_generated::pb::chat::{CommonResponse, UpdateConversationInfoRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue, IntoActiveModel};

use super::add_members::done;
use crate::members;

impl Handle<rpc::UpdateConversationInfo> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UpdateConversationInfoRequest,
    ) -> Result<CommonResponse, ServiceError> {
        members::check_name(&request.name)?;
        let (conversation, _manager) = self.require_manager(&ctx, request.conversation_id).await?;
        if request.name.is_empty() && request.avatar.is_empty() {
            return Ok(done("nothing to change"));
        }

        let mut row: conversations::ActiveModel = conversation.into_active_model();
        if !request.name.is_empty() {
            row.name = ActiveValue::Set(request.name);
        }
        if !request.avatar.is_empty() {
            row.avatar = ActiveValue::Set(Some(request.avatar));
        }
        row.updated_at = ActiveValue::Set(Utc::now());
        row.update(&self.db).await?;
        Ok(done("conversation updated"))
    }
}
