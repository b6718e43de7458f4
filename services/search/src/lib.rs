//! Hand-written logic of the search service (port 8006).
//!
//! Build the service with [`SearchService::new`] from a [`SearchDeps`], serve it with
//! `beehive_generated::search::server`, and start indexing `message.index` events with
//! [`SearchService::spawn_background`], which joins the competing consumer group
//! [`INDEX_GROUP`]. On shutdown, [`stop_indexing`] ends that subscription and then commits the
//! index, so every event the consumer has acknowledged survives a restart. [`reindex::reindex`] rebuilds the index from the `messages` table, for
//! `beehive reindex`.
//!
//! Decisions the contracts leave open:
//! - Only text messages (content type 1) are indexed from events. IndexMessage, called by
//!   services, indexes what it is given; both upsert by message id, so repeating them is safe.
//! - SearchMessages searches the conversations `user_id` is a member of, as the chat service's
//!   GetConversations lists them. The list is cached per user for `search.membership_cache_secs`
//!   (at most [`MAX_MEMBERSHIP_CACHE`]), so a removed member stops seeing hits within that time,
//!   and a conversation joined a moment ago may take as long to show up in unscoped searches.
//!   A `conversation_id` missing from a cached list is checked again against the chat service
//!   before the call is refused, so a member added a moment ago is not refused. A conversation
//!   that does not exist is NOT_FOUND naming `conversation_id`, and one the user is not a member
//!   of is PERMISSION_DENIED.
//! - `page` 0 means 1 and `page_size` 0 means [`DEFAULT_PAGE_SIZE`]; a larger `page_size` than
//!   [`MAX_PAGE_SIZE`] is cut to it. A keyword of only blanks is INVALID_ARGUMENT.
//! - A user who is a member of no conversation gets an empty page with `total` 0.

beehive_generated::search_logic_modules!();

pub mod events;
pub mod membership;
pub mod reindex;

use std::sync::Arc;
use std::time::Duration;

use beehive_generated::chat::ChatClient;
use beehive_runtime::ServiceError;
use beehive_runtime::bus::{Bus, BusError, Subscription, SubscriptionHandle, TOPIC_MESSAGE_INDEX};
use beehive_runtime::config::SearchConfig;
use beehive_runtime::search::{SearchEngine, SearchError};

pub use membership::Memberships;

/// Consumer group that shares `message.index` events among search instances.
pub const INDEX_GROUP: &str = "search-index";
/// Hits per page when the request leaves `page_size` at 0.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page; a larger `page_size` is cut to it.
pub const MAX_PAGE_SIZE: u32 = beehive_runtime::search::MAX_PAGE_SIZE;
/// Maximum time a user's conversation list is cached, even when
/// `search.membership_cache_secs` is larger.
pub const MAX_MEMBERSHIP_CACHE: Duration = Duration::from_secs(5);

/// Dependencies of [`SearchService::new`].
pub struct SearchDeps {
    /// The `search.*` settings (`membership_cache_secs`).
    pub config: SearchConfig,
    /// The index: `TantivyEngine::open(<data>/search)` or an `ElasticsearchEngine`.
    pub engine: Arc<dyn SearchEngine>,
    /// Client of the chat service, which lists the conversations of a user.
    pub chat: ChatClient,
    /// Service token for calls to the chat service; `None` forwards the caller's token
    /// (enough in `trust` mode, and for users searching their own messages).
    pub service_token: Option<String>,
}

/// Logic of `SearchService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct SearchService {
    engine: Arc<dyn SearchEngine>,
    memberships: Memberships,
}

impl SearchService {
    /// Builds the service; it must run inside a Tokio runtime.
    pub fn new(deps: SearchDeps) -> Self {
        let ttl = Duration::from_secs(deps.config.membership_cache_secs).min(MAX_MEMBERSHIP_CACHE);
        Self {
            engine: deps.engine,
            memberships: Memberships::new(deps.chat, deps.service_token, ttl),
        }
    }

    /// The index this service reads and writes.
    pub fn engine(&self) -> &Arc<dyn SearchEngine> {
        &self.engine
    }

    /// Subscribes to `message.index` in the competing group [`INDEX_GROUP`] and indexes the
    /// text messages it carries; delivery stops when the returned handle is stopped or dropped.
    pub async fn spawn_background(
        &self,
        bus: Arc<dyn Bus>,
    ) -> Result<SubscriptionHandle, BusError> {
        let handler = Arc::new(events::IndexHandler::new(Arc::clone(&self.engine)));
        bus.subscribe(
            Subscription::competing(INDEX_GROUP, &[TOPIC_MESSAGE_INDEX]),
            handler,
        )
        .await
    }
}

/// Stops consuming `message.index` and commits the index.
///
/// The subscription ends first, after the event in progress, so no write can follow the final
/// commit. Call it after the servers and the message relay have stopped.
///
/// NOTE: between two automatic commits (up to 500 ms with tantivy), an event is acknowledged
/// before the index stores it durably, so a crash, unlike a graceful stop, can lose it. The
/// message stays in `messages`, and [`reindex::reindex`] indexes it again.
pub async fn stop_indexing(subscription: SubscriptionHandle, engine: &dyn SearchEngine) {
    subscription.stop().await;
    match engine.refresh().await {
        Ok(()) => tracing::info!("committed the search index after the consumer stopped"),
        Err(err) => tracing::error!(error = %err, "committing the search index on shutdown failed"),
    }
}

/// Maps an engine failure: a rejected query is INVALID_ARGUMENT naming the field, anything else
/// INTERNAL.
fn search_error(err: SearchError) -> ServiceError {
    match err {
        SearchError::InvalidQuery { field, reason } => ServiceError::invalid(field, reason),
        other => ServiceError::internal(other),
    }
}
