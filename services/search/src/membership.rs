//! Which conversations a user may search: the chat service's answer, cached briefly per user.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use beehive_generated::chat::ChatClient;
use beehive_generated::pb::chat::{
    CheckMemberRequest, CheckMemberResponse, GetConversationsRequest,
};
use beehive_runtime::client::{outgoing, outgoing_as_service};
use beehive_runtime::{CallContext, ServiceError};

/// Most users whose conversation lists are cached at once.
const MAX_CACHED_USERS: u64 = 100_000;

/// A user's conversation ids.
pub type ConversationSet = Arc<HashSet<i64>>;

/// Conversation lists from the chat service, cached per user for a short time. Concurrent misses
/// for one user share one call.
#[derive(Clone)]
pub struct Memberships {
    chat: ChatClient,
    service_token: Option<String>,
    cache: moka::future::Cache<i64, ConversationSet>,
}

impl Memberships {
    pub fn new(chat: ChatClient, service_token: Option<String>, ttl: Duration) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(MAX_CACHED_USERS)
            .time_to_live(ttl)
            .build();
        Self {
            chat,
            service_token,
            cache,
        }
    }

    /// Returns the conversations `user_id` is a member of, from the cache when fresh.
    pub async fn conversations(
        &self,
        ctx: &CallContext,
        user_id: i64,
    ) -> Result<ConversationSet, ServiceError> {
        let load = self.load(ctx.clone(), user_id);
        self.cache
            .try_get_with(user_id, load)
            .await
            .map_err(unshare)
    }

    /// Asks the chat service again, replacing the cached list.
    pub async fn reload(
        &self,
        ctx: &CallContext,
        user_id: i64,
    ) -> Result<ConversationSet, ServiceError> {
        self.cache.invalidate(&user_id).await;
        self.conversations(ctx, user_id).await
    }

    /// Asks the chat service whether `user_id` is a member of `conversation_id`, and whether
    /// the conversation exists at all. Never cached.
    pub async fn check(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<CheckMemberResponse, ServiceError> {
        let message = CheckMemberRequest {
            conversation_id,
            user_id,
            ..CheckMemberRequest::default()
        };
        let request = match &self.service_token {
            Some(token) => outgoing_as_service(ctx, message, token),
            None => outgoing(ctx, message),
        };
        self.chat.clone().check_member(request).await
    }

    fn load(
        &self,
        ctx: CallContext,
        user_id: i64,
    ) -> impl Future<Output = Result<ConversationSet, ServiceError>> + Send + 'static {
        let chat = self.chat.clone();
        let service_token = self.service_token.clone();
        async move {
            let message = GetConversationsRequest { user_id };
            let request = match &service_token {
                Some(token) => outgoing_as_service(&ctx, message, token),
                None => outgoing(&ctx, message),
            };
            let response = chat.get_conversations(request).await?;
            let ids = response
                .conversations
                .iter()
                .map(|conversation| conversation.conversation_id)
                .collect();
            Ok(Arc::new(ids))
        }
    }
}

/// Takes the error out of the cache's shared wrapper, copying its code and text when other
/// waiters still hold it.
fn unshare(shared: Arc<ServiceError>) -> ServiceError {
    Arc::try_unwrap(shared).unwrap_or_else(|shared| {
        ServiceError::Downstream(tonic::Status::new(shared.code(), shared.to_string()))
    })
}
