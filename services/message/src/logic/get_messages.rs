//! `GetMessages`: a member's history page, newest first, older than `before_id` (0: from the
//! newest); `limit` 0 means 50 and is cut to 100; `has_more` is exact. First pages come from
//! the hot cache when it holds the conversation's newest message.

use std::sync::Arc;

use beehive_generated::entity::messages;
use beehive_generated::message::rpc;
use beehive_generated::pb::message::{GetMessagesRequest, MessagesResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::EntityTrait;

use crate::store;

/// Page size when the request's `limit` is 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page; larger limits are cut to it. Configuration validation sizes the message
/// limits so that a full page fits in `server.max_message_bytes`.
pub const MAX_PAGE_SIZE: usize = beehive_runtime::config::MAX_MESSAGES_PAGE as usize;

impl Handle<rpc::GetMessages> for crate::MessageService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetMessagesRequest,
    ) -> Result<MessagesResponse, ServiceError> {
        let limit = match usize::try_from(request.limit) {
            Ok(0) | Err(_) => DEFAULT_PAGE_SIZE,
            Ok(limit) => limit.min(MAX_PAGE_SIZE),
        };
        let conversation_id = request.conversation_id;
        self.require_reader(&ctx, conversation_id).await?;

        let before_seq = if request.before_id == 0 {
            None
        } else {
            let cursor = messages::Entity::find_by_id(request.before_id)
                .one(&self.db)
                .await?
                .filter(|message| message.conversation_id == conversation_id)
                .ok_or_else(|| {
                    ServiceError::not_found_field(
                        "before_id",
                        format!(
                            "message {} in conversation {conversation_id}",
                            request.before_id
                        ),
                    )
                })?;
            Some(cursor.seq)
        };

        let newest_first = match before_seq {
            None => self.first_page(conversation_id, limit).await?,
            Some(before_seq) => {
                store::page(&self.db, conversation_id, before_seq, limit as u64 + 1).await?
            }
        };
        let has_more = newest_first.len() > limit;
        Ok(MessagesResponse {
            messages: newest_first
                .iter()
                .take(limit)
                .map(store::message_info)
                .collect(),
            has_more,
        })
    }
}

impl crate::MessageService {
    /// Returns up to `limit + 1` newest messages, newest first, from the hot cache when it is
    /// current, else from the database (refilling the cache).
    async fn first_page(
        &self,
        conversation_id: i64,
        limit: usize,
    ) -> Result<Vec<messages::Model>, ServiceError> {
        let last_seq = store::last_seq(&self.db, conversation_id).await?;
        if last_seq == 0 {
            return Ok(Vec::new());
        }
        if let Some(list) = self.hot.current(conversation_id, last_seq).await
            && let Some(page) = page_from_list(&list, limit)
        {
            return Ok(page);
        }

        let _guard = self.hot.lock(conversation_id).lock().await;
        let last_seq = store::last_seq(&self.db, conversation_id).await?;
        if let Some(list) = self.hot.current(conversation_id, last_seq).await
            && let Some(page) = page_from_list(&list, limit)
        {
            return Ok(page);
        }
        let fetch = self.hot.size().max(limit + 1) as u64;
        let newest_first = store::page(&self.db, conversation_id, i64::MAX, fetch).await?;
        let list: Vec<messages::Model> = newest_first
            .iter()
            .take(self.hot.size())
            .rev()
            .cloned()
            .collect();
        if !list.is_empty() {
            self.hot.store(conversation_id, Arc::new(list)).await;
        }
        Ok(newest_first.into_iter().take(limit + 1).collect())
    }
}

/// Cuts `limit + 1` newest messages from a cached list (oldest first), or `None` when the list
/// is too short to know the page and whether more exist.
fn page_from_list(list: &[messages::Model], limit: usize) -> Option<Vec<messages::Model>> {
    let starts_at_first = list.first().is_some_and(|oldest| oldest.seq == 1);
    if list.len() <= limit && !starts_at_first {
        return None;
    }
    Some(list.iter().rev().take(limit + 1).cloned().collect())
}
