//! The other services chat depends on, behind small traits so tests can stand in for them.

use std::collections::HashSet;

use async_trait::async_trait;
use beehive_generated::friend::FriendClient;
use beehive_generated::message::MessageClient;
use beehive_generated::pb::friend::IsFriendRequest;
use beehive_generated::pb::message::{ConversationStats, GetConversationStatsRequest};
use beehive_generated::pb::user::GetUsersByIdsRequest;
use beehive_generated::user::UserClient;
use beehive_runtime::client::{outgoing, outgoing_as_service};
use beehive_runtime::token_users::UserDirectory;
use beehive_runtime::{CallContext, ServiceError};

/// Most user ids one `GetUsersByIds` call takes.
const USERS_PER_CALL: usize = 100;
/// Most conversations one `GetConversationStats` call takes.
pub const STATS_PER_CALL: usize = 1000;

/// Friendship checks (the friend service).
#[async_trait]
pub trait Friends: Send + Sync {
    async fn are_friends(
        &self,
        ctx: &CallContext,
        user_id: i64,
        friend_id: i64,
    ) -> Result<bool, ServiceError>;
}

/// Which users exist (the user service).
#[async_trait]
pub trait Users: Send + Sync {
    /// Returns the ids among `user_ids` that belong to existing users.
    async fn existing(
        &self,
        ctx: &CallContext,
        user_ids: &[i64],
    ) -> Result<HashSet<i64>, ServiceError>;
}

/// Message counters of conversations (the message service).
#[async_trait]
pub trait MessageStats: Send + Sync {
    /// Returns one entry per conversation in `conversation_ids`, for `user_id`.
    async fn stats(
        &self,
        ctx: &CallContext,
        user_id: i64,
        conversation_ids: &[i64],
    ) -> Result<Vec<ConversationStats>, ServiceError>;
}

/// Builds a request with the service token when there is one, else with the caller's token.
fn request<T>(ctx: &CallContext, token: Option<&str>, message: T) -> tonic::Request<T> {
    match token {
        Some(token) => outgoing_as_service(ctx, message, token),
        None => outgoing(ctx, message),
    }
}

/// [`Friends`] over the friend service's `IsFriend`.
pub struct GrpcFriends {
    client: FriendClient,
    service_token: Option<String>,
}

impl GrpcFriends {
    pub fn new(client: FriendClient, service_token: Option<String>) -> Self {
        Self {
            client,
            service_token,
        }
    }
}

#[async_trait]
impl Friends for GrpcFriends {
    async fn are_friends(
        &self,
        ctx: &CallContext,
        user_id: i64,
        friend_id: i64,
    ) -> Result<bool, ServiceError> {
        let message = IsFriendRequest { user_id, friend_id };
        let response = self
            .client
            .is_friend(request(ctx, self.service_token.as_deref(), message))
            .await?;
        Ok(response.is_friend)
    }
}

/// [`Users`] over the user service's `GetUsersByIds`, 100 ids per call.
pub struct GrpcUsers {
    client: UserClient,
    service_token: Option<String>,
}

impl GrpcUsers {
    pub fn new(client: UserClient, service_token: Option<String>) -> Self {
        Self {
            client,
            service_token,
        }
    }
}

#[async_trait]
impl Users for GrpcUsers {
    async fn existing(
        &self,
        ctx: &CallContext,
        user_ids: &[i64],
    ) -> Result<HashSet<i64>, ServiceError> {
        let mut found = HashSet::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(USERS_PER_CALL) {
            let message = GetUsersByIdsRequest {
                user_ids: chunk.to_vec(),
            };
            let response = self
                .client
                .get_users_by_ids(request(ctx, self.service_token.as_deref(), message))
                .await?;
            found.extend(response.users.iter().map(|user| user.user_id));
        }
        Ok(found)
    }
}

/// Lets every server of a deployment check that a token's user exists (see
/// [`beehive_runtime::token_users`]).
#[async_trait]
impl UserDirectory for GrpcUsers {
    async fn user_exists(&self, ctx: &CallContext, user_id: i64) -> Result<bool, ServiceError> {
        Ok(self.existing(ctx, &[user_id]).await?.contains(&user_id))
    }
}

/// [`MessageStats`] over the message service's `GetConversationStats`.
pub struct GrpcMessageStats {
    client: MessageClient,
    service_token: Option<String>,
}

impl GrpcMessageStats {
    pub fn new(client: MessageClient, service_token: Option<String>) -> Self {
        Self {
            client,
            service_token,
        }
    }
}

#[async_trait]
impl MessageStats for GrpcMessageStats {
    async fn stats(
        &self,
        ctx: &CallContext,
        user_id: i64,
        conversation_ids: &[i64],
    ) -> Result<Vec<ConversationStats>, ServiceError> {
        let mut stats = Vec::with_capacity(conversation_ids.len());
        for chunk in conversation_ids.chunks(STATS_PER_CALL) {
            let message = GetConversationStatsRequest {
                user_id,
                conversation_ids: chunk.to_vec(),
            };
            let response = self
                .client
                .get_conversation_stats(request(ctx, self.service_token.as_deref(), message))
                .await?;
            stats.extend(response.stats);
        }
        Ok(stats)
    }
}
