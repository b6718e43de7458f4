//! `IndexMessage` (service token only): adds a message to the index or replaces its entry.

use beehive_generated::pb::search::{CommonResponse, IndexMessageRequest};
use beehive_generated::search::rpc;
use beehive_runtime::search::MessageDocument;
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::{SearchService, search_error};

impl Handle<rpc::IndexMessage> for SearchService {
    async fn handle(
        &self,
        _ctx: CallContext,
        request: IndexMessageRequest,
    ) -> Result<CommonResponse, ServiceError> {
        let document = MessageDocument {
            message_id: request.message_id,
            conversation_id: request.conversation_id,
            sender_id: request.sender_id,
            content: request.content,
            created_at: request.created_at,
        };

        self.engine.index(&[document]).await.map_err(search_error)?;

        Ok(CommonResponse {
            success: true,
            message: format!("indexed message {}", request.message_id),
        })
    }
}
