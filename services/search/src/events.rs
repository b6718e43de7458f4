//! The `message.index` consumer: indexes text messages and removes deleted ones.
//!
//! The event payload is a JSON object with `message_id`, `conversation_id`, `sender_id`,
//! `content_type`, `content` and `created_at` (Unix seconds). `"deleted": true` removes the
//! message from the index instead. A missing `content_type` counts as text.

use std::sync::Arc;

use async_trait::async_trait;
use beehive_runtime::bus::{Event, EventHandler, HandlerError};
use beehive_runtime::search::{MessageDocument, SearchEngine};
use serde::Deserialize;

/// `content_type` of text messages, the only ones indexed from events.
pub const CONTENT_TYPE_TEXT: i32 = 1;

/// Payload of a `message.index` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexEvent {
    #[serde(alias = "id")]
    pub message_id: i64,
    #[serde(default)]
    pub conversation_id: i64,
    #[serde(default)]
    pub sender_id: i64,
    #[serde(default = "text_content_type")]
    pub content_type: i32,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub deleted: bool,
}

fn text_content_type() -> i32 {
    CONTENT_TYPE_TEXT
}

/// Applies `message.index` events to a search engine.
pub struct IndexHandler {
    engine: Arc<dyn SearchEngine>,
}

impl IndexHandler {
    pub fn new(engine: Arc<dyn SearchEngine>) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl EventHandler for IndexHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let payload: IndexEvent = match serde_json::from_value(event.payload.clone()) {
            Ok(payload) => payload,
            Err(err) => {
                // A payload that cannot parse never will: retrying it would only delay the
                // events behind it.
                tracing::warn!(event_id = %event.id, error = %err, "dropped a malformed message.index event");
                return Ok(());
            }
        };

        if payload.deleted {
            self.engine.delete(&[payload.message_id]).await?;
            return Ok(());
        }
        if payload.content_type != CONTENT_TYPE_TEXT {
            return Ok(());
        }
        let document = MessageDocument {
            message_id: payload.message_id,
            conversation_id: payload.conversation_id,
            sender_id: payload.sender_id,
            content: payload.content,
            created_at: payload.created_at,
        };
        self.engine.index(&[document]).await?;
        tracing::debug!(event_id = %event.id, message_id = payload.message_id, "indexed a message");
        Ok(())
    }
}
