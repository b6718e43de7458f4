//! Conversation membership as the chat service reports it, with a short local cache.
//!
//! The chat service also reports whether the two users of a single chat are still friends.
//! That result is cached with the membership, so after a friendship ends the former friend may
//! still send for up to [`MEMBER_CACHE_TTL`], and after it is renewed must wait as long.

use std::time::Duration;

use async_trait::async_trait;
use beehive_generated::chat::ChatClient;
use beehive_generated::pb::chat::CheckMemberRequest;
use beehive_runtime::client::{outgoing, outgoing_as_service};
use beehive_runtime::{CallContext, ServiceError};

/// How long a positive membership result (including whether the users of a single chat are
/// friends) is reused before the chat service is asked again.
pub const MEMBER_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most (conversation, user) pairs remembered.
const MEMBER_CACHE_CAPACITY: u64 = 100_000;

/// A user's standing in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Member,
    /// A member of a single chat whose other user is no longer a friend: the user may read the
    /// conversation but not send to it.
    MemberNotFriends,
    /// The conversation exists and the user is not in it.
    NotMember,
    /// No conversation has this id.
    NoConversation,
}

/// Checks whether a user belongs to a conversation.
#[async_trait]
pub trait Membership: Send + Sync {
    async fn check_member(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<MemberStatus, ServiceError>;
}

/// [`Membership`] over the chat service's `CheckMember`, remembering members for
/// [`MEMBER_CACHE_TTL`]. Non-members are never cached, so a user added a moment ago can send.
pub struct ChatMembership {
    client: ChatClient,
    service_token: Option<String>,
    /// [`MemberStatus::Member`] or [`MemberStatus::MemberNotFriends`] per (conversation, user).
    members: moka::future::Cache<(i64, i64), MemberStatus>,
}

impl ChatMembership {
    /// Asks `client` with `service_token`, or with the caller's own token when it is `None`
    /// (`trust` mode).
    pub fn new(client: ChatClient, service_token: Option<String>) -> Self {
        Self {
            client,
            service_token,
            members: moka::future::Cache::builder()
                .max_capacity(MEMBER_CACHE_CAPACITY)
                .time_to_live(MEMBER_CACHE_TTL)
                .build(),
        }
    }
}

#[async_trait]
impl Membership for ChatMembership {
    async fn check_member(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<MemberStatus, ServiceError> {
        let key = (conversation_id, user_id);
        if let Some(status) = self.members.get(&key).await {
            return Ok(status);
        }

        let message = CheckMemberRequest {
            conversation_id,
            user_id,
            check_friendship: true,
        };
        let request = match &self.service_token {
            Some(token) => outgoing_as_service(ctx, message, token),
            None => outgoing(ctx, message),
        };
        let response = self.client.check_member(request).await?;

        if response.is_member {
            let status = if response.not_friends {
                MemberStatus::MemberNotFriends
            } else {
                MemberStatus::Member
            };
            self.members.insert(key, status).await;
            Ok(status)
        } else if response.conversation_missing {
            Ok(MemberStatus::NoConversation)
        } else {
            Ok(MemberStatus::NotMember)
        }
    }
}
