//! Rebuilding the index from the message store, for `beehive reindex`.

use beehive_generated::entity::messages;
use beehive_runtime::search::{MessageDocument, SearchEngine, SearchError};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::events::CONTENT_TYPE_TEXT;

/// Messages read and indexed per batch by default.
pub const DEFAULT_BATCH_SIZE: u64 = 1_000;

/// How far a rebuild has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReindexProgress {
    /// Text messages indexed so far.
    pub indexed: u64,
    /// Text messages in the store when the rebuild started.
    pub total: u64,
    /// Highest message id indexed so far.
    pub last_message_id: i64,
}

/// A rebuild failure.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error("reading messages after id {after} failed")]
    Read {
        after: i64,
        #[source]
        source: DbErr,
    },
    #[error("indexing messages after id {after} failed")]
    Index {
        after: i64,
        #[source]
        source: SearchError,
    },
}

/// Indexes every text message of `db` into `engine`, in message id order and `batch_size`
/// messages at a time, calling `progress` after each batch. Returns the final progress.
///
/// Documents are upserted by message id, so the rebuild can run beside a live service and can be
/// repeated. It does not remove index entries whose message is gone from the store.
pub async fn reindex(
    db: &DatabaseConnection,
    engine: &dyn SearchEngine,
    batch_size: u64,
    mut progress: impl FnMut(&ReindexProgress),
) -> Result<ReindexProgress, ReindexError> {
    let batch_size = batch_size.max(1);
    let total = messages::Entity::find()
        .filter(messages::Column::ContentType.eq(CONTENT_TYPE_TEXT))
        .count(db)
        .await
        .map_err(|source| ReindexError::Read { after: 0, source })?;
    let mut state = ReindexProgress {
        total,
        ..ReindexProgress::default()
    };
    progress(&state);

    loop {
        let after = state.last_message_id;
        let batch = messages::Entity::find()
            .filter(messages::Column::ContentType.eq(CONTENT_TYPE_TEXT))
            .filter(messages::Column::Id.gt(after))
            .order_by_asc(messages::Column::Id)
            .limit(batch_size)
            .all(db)
            .await
            .map_err(|source| ReindexError::Read { after, source })?;
        let Some(last) = batch.last() else {
            break;
        };
        state.last_message_id = last.id;

        let documents: Vec<MessageDocument> = batch
            .into_iter()
            .map(|message| MessageDocument {
                message_id: message.id,
                conversation_id: message.conversation_id,
                sender_id: message.sender_id,
                content: message.content,
                created_at: message.created_at.timestamp(),
            })
            .collect();
        engine
            .index(&documents)
            .await
            .map_err(|source| ReindexError::Index { after, source })?;
        state.indexed += documents.len() as u64;
        // Messages sent during the rebuild are indexed too, so the count may pass the total.
        state.total = state.total.max(state.indexed);
        progress(&state);
    }

    engine
        .refresh()
        .await
        .map_err(|source| ReindexError::Index {
            after: state.last_message_id,
            source,
        })?;
    Ok(state)
}
