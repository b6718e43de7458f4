//! Lookups and checks shared by the RPCs: conversations, members, roles and unread counts.

use beehive_generated::entity::{conversation_members, conversations};
use beehive_generated::pb::message::ConversationStats;
use beehive_runtime::validate::check;
use beehive_runtime::{CallContext, ServiceError};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{ChatService, ROLE_ADMIN, ROLE_OWNER, TYPE_GROUP};

/// Rejects a conversation name with directional formatting characters, which could make it
/// display as another text. Control characters are rejected by the proto's input rules.
pub(crate) fn check_name(name: &str) -> Result<(), ServiceError> {
    check::no_directional_formatting(name).map_err(|reason| ServiceError::invalid("name", reason))
}

/// Returns the conversation or NOT_FOUND naming `conversation_id`.
pub(crate) async fn conversation<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
) -> Result<conversations::Model, ServiceError> {
    conversations::Entity::find_by_id(conversation_id)
        .one(conn)
        .await?
        .ok_or_else(|| missing_conversation(conversation_id))
}

/// Returns whether a conversation with this id exists.
pub(crate) async fn conversation_exists<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
) -> Result<bool, ServiceError> {
    Ok(conversations::Entity::find_by_id(conversation_id)
        .one(conn)
        .await?
        .is_some())
}

pub(crate) fn missing_conversation(conversation_id: i64) -> ServiceError {
    ServiceError::not_found_field("conversation_id", format!("conversation {conversation_id}"))
}

/// Returns the member row of `user_id`, if the user belongs to the conversation.
pub(crate) async fn member<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
    user_id: i64,
) -> Result<Option<conversation_members::Model>, ServiceError> {
    Ok(conversation_members::Entity::find()
        .filter(conversation_members::Column::ConversationId.eq(conversation_id))
        .filter(conversation_members::Column::UserId.eq(user_id))
        .one(conn)
        .await?)
}

/// Returns the member row of `user_id`, else NOT_FOUND naming `conversation_id` when the
/// conversation does not exist, or PERMISSION_DENIED when it does.
pub(crate) async fn require_member<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
    user_id: i64,
) -> Result<conversation_members::Model, ServiceError> {
    if let Some(member) = member(conn, conversation_id, user_id).await? {
        return Ok(member);
    }
    // The existence query runs only after the member lookup failed, so members pay nothing.
    if conversation_exists(conn, conversation_id).await? {
        Err(not_member(conversation_id, user_id))
    } else {
        Err(missing_conversation(conversation_id))
    }
}

pub(crate) fn not_member(conversation_id: i64, user_id: i64) -> ServiceError {
    ServiceError::permission_denied(format!(
        "user {user_id} is not a member of conversation {conversation_id}"
    ))
}

/// Computes a member's unread count from the conversation's counters.
pub(crate) fn unread_count(member: &conversation_members::Model, stats: &ConversationStats) -> i32 {
    let unread = (stats.last_seq - member.read_seq) - (stats.sent_by_user - member.read_sent)
        + i64::from(member.unread_adjust);
    i32::try_from(unread.max(0)).unwrap_or(i32::MAX)
}

/// The role the caller manages a group with, after checking it is a group.
pub(crate) enum Manager {
    /// A service (or `trust` mode): owner rights.
    Service,
    /// A member with this role (admin or owner).
    User { role: i16 },
}

impl Manager {
    pub(crate) fn role(&self) -> i16 {
        match self {
            Self::Service => ROLE_OWNER,
            Self::User { role, .. } => *role,
        }
    }
}

impl ChatService {
    /// Loads a group and checks that the caller is its owner or an admin.
    pub(crate) async fn require_manager(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
    ) -> Result<(conversations::Model, Manager), ServiceError> {
        ctx.require_authenticated()?;
        let conversation = conversation(&self.db, conversation_id).await?;
        let manager = match ctx.user_id() {
            None => Manager::Service,
            Some(user_id) => {
                let member = require_member(&self.db, conversation_id, user_id).await?;
                if member.role < ROLE_ADMIN {
                    return Err(ServiceError::permission_denied(format!(
                        "user {user_id} is neither the owner nor an admin of conversation {conversation_id}"
                    )));
                }
                Manager::User { role: member.role }
            }
        };
        if conversation.r#type != TYPE_GROUP {
            return Err(ServiceError::failed_precondition(format!(
                "conversation {conversation_id} is a single chat; only groups change members or details"
            )));
        }
        Ok((conversation, manager))
    }
}
