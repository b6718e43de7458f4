//! `CheckMember`: whether a user belongs to a conversation, and with which role. On request
//! (`check_friendship`) it also reports whether the two users of a single chat are still
//! friends, which the message service needs before a send.

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversations;
use beehive_generated::pb::chat::{CheckMemberRequest, CheckMemberResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::EntityTrait;

use crate::{TYPE_SINGLE, members};

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
        let not_friends = member.is_some()
            && request.check_friendship
            && !self
                .single_chat_peers_are_friends(&ctx, request.conversation_id, request.user_id)
                .await?;
        Ok(CheckMemberResponse {
            is_member: member.is_some(),
            role: member.map_or(0, |member| i32::from(member.role)),
            conversation_missing,
            not_friends,
        })
    }
}

impl crate::ChatService {
    /// Returns whether `user_id` is still a friend of the other user of a single chat. For a
    /// group it returns `true`.
    async fn single_chat_peers_are_friends(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<bool, ServiceError> {
        let Some(conversation) = conversations::Entity::find_by_id(conversation_id)
            .one(&self.db)
            .await?
        else {
            return Ok(true);
        };
        if conversation.r#type != TYPE_SINGLE {
            return Ok(true);
        }
        let Some(peer) = conversation.single_key.as_deref().and_then(|key| peer_of(key, user_id))
        else {
            return Err(ServiceError::internal(format!(
                "single chat {conversation_id} has no valid pair key containing user {user_id}: {:?}",
                conversation.single_key
            )));
        };
        self.friends.are_friends(ctx, user_id, peer).await
    }
}

/// Returns the other user of a single chat's pair key `"min:max"`, if `user_id` is one of them.
fn peer_of(single_key: &str, user_id: i64) -> Option<i64> {
    let (low, high) = single_key.split_once(':')?;
    let (low, high) = (low.parse::<i64>().ok()?, high.parse::<i64>().ok()?);
    if low == user_id {
        Some(high)
    } else if high == user_id {
        Some(low)
    } else {
        None
    }
}
