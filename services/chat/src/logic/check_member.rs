//! `CheckMember`: whether a user belongs to a conversation, and with which role.

use beehive_generated::chat::rpc;
use beehive_generated::pb::chat::{CheckMemberRequest, CheckMemberResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::members;

impl Handle<rpc::CheckMember> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: CheckMemberRequest,
    ) -> Result<CheckMemberResponse, ServiceError> {
        ctx.require_authenticated()?;
        if let Some(caller) = ctx.user_id()
            && caller != request.user_id
        {
            members::require_member(&self.db, request.conversation_id, caller).await?;
        }

        let member = members::member(&self.db, request.conversation_id, request.user_id).await?;
        let conversation_missing = match &member {
            Some(_) => false,
            None => !members::conversation_exists(&self.db, request.conversation_id).await?,
        };
        Ok(CheckMemberResponse {
            is_member: member.is_some(),
            role: member.map_or(0, |member| i32::from(member.role)),
            conversation_missing,
        })
    }
}
