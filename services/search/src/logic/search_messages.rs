//! `SearchMessages`: finds messages by keyword in the conversations the caller is a member of
//! now, newest first, one page at a time with the exact total.

use beehive_generated::pb::search::{
    SearchMessageInfo, SearchMessagesRequest, SearchMessagesResponse,
};
use beehive_generated::search::rpc;
use beehive_runtime::search::SearchQuery;
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, SearchService, search_error};

impl SearchService {
    /// Checks with the chat service a conversation missing from the user's list: NOT_FOUND
    /// naming `conversation_id` when it does not exist, PERMISSION_DENIED when the user is not
    /// a member.
    async fn require_member(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<(), ServiceError> {
        let membership = self
            .memberships
            .check(ctx, conversation_id, user_id)
            .await?;
        if membership.conversation_missing {
            return Err(ServiceError::not_found_field(
                "conversation_id",
                format!("conversation {conversation_id}"),
            ));
        }
        if !membership.is_member {
            return Err(ServiceError::permission_denied(format!(
                "user {user_id} is not a member of conversation {conversation_id}"
            )));
        }
        Ok(())
    }
}

impl Handle<rpc::SearchMessages> for SearchService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: SearchMessagesRequest,
    ) -> Result<SearchMessagesResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        if request.keyword.trim().is_empty() {
            return Err(ServiceError::invalid(
                "keyword",
                "must contain a word, not only blanks",
            ));
        }
        let page = u32::try_from(request.page).unwrap_or(0).max(1);
        let page_size = match u32::try_from(request.page_size).unwrap_or(0) {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };

        let mut conversations = self
            .memberships
            .conversations(&ctx, request.user_id)
            .await?;
        let conversation_ids = if request.conversation_id == 0 {
            conversations.iter().copied().collect()
        } else {
            if !conversations.contains(&request.conversation_id) {
                // The cached list may predate joining: ask once more before refusing.
                conversations = self.memberships.reload(&ctx, request.user_id).await?;
            }
            if !conversations.contains(&request.conversation_id) {
                self.require_member(&ctx, request.conversation_id, request.user_id)
                    .await?;
            }
            vec![request.conversation_id]
        };
        if conversation_ids.is_empty() {
            return Ok(SearchMessagesResponse::default());
        }

        let query = SearchQuery {
            keyword: request.keyword,
            conversation_ids,
            page,
            page_size,
        };
        let found = self.engine.search(&query).await.map_err(search_error)?;

        Ok(SearchMessagesResponse {
            messages: found
                .hits
                .into_iter()
                .map(|hit| SearchMessageInfo {
                    message_id: hit.message_id,
                    conversation_id: hit.conversation_id,
                    sender_id: hit.sender_id,
                    content: hit.content,
                    highlight: hit.highlight,
                    created_at: hit.created_at,
                })
                .collect(),
            total: i64::try_from(found.total).unwrap_or(i64::MAX),
        })
    }
}
