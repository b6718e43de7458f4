//! Full-text search over chat messages.
//!
//! One [`SearchEngine`] trait with two implementations:
//! - [`TantivyEngine`], the default: an index in `<data>/search/`, tokenized by
//!   [`tokenizer::analyzer`] so Chinese, Japanese, Korean and English share one field.
//! - [`ElasticsearchEngine`]: the same documents and query semantics on an Elasticsearch
//!   cluster, with the analysis defined in the index mapping.
//!
//! Semantics both implement:
//! - Documents are upserted by `message_id`; indexing the same id again replaces it.
//! - A keyword matches when every run in it matches: a Latin-script word matches its stem
//!   (case-insensitive), and a run of two or more CJK characters matches wherever it occurs as
//!   a substring. Hits must belong to one of the given conversations; an empty set matches
//!   nothing.
//! - With tantivy, a single CJK character matches any message containing it, an emoji matches
//!   itself, and accents are folded ("cafe" finds "café"). An index built before these rules
//!   applies them to old messages only after a rebuild (`beehive_search::reindex::reindex`).
//!   NOTE: the Elasticsearch mapping does not do this yet: there a single character matches
//!   only where it stands alone, emoji are dropped and accents are kept.
//! - Hits are ordered newest first (`created_at` descending, then `message_id` descending) and
//!   paged from page 1. `total` is the exact number of matches, and a page past the end is
//!   empty but still reports the total.
//! - `highlight` is the content (or the best fragment of a long message), HTML-escaped, with
//!   each matched word or CJK substring wrapped in `<em>…</em>`.
//! - Writes become searchable after the next refresh: within one second on their own, or at
//!   once after [`SearchEngine::refresh`].

mod elastic;
mod query;
mod tantivy_engine;
pub mod tokenizer;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use elastic::{DEFAULT_INDEX, ElasticsearchEngine, index_mapping};
pub use query::{KeywordPart, parse_keyword};
pub use tantivy_engine::TantivyEngine;

/// Largest accepted page size.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Longest accepted keyword, in characters.
pub const MAX_KEYWORD_CHARS: usize = 200;
/// Most conversations one search may filter on.
pub const MAX_CONVERSATIONS: usize = 10_000;

/// A message as the index stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDocument {
    pub message_id: i64,
    pub conversation_id: i64,
    pub sender_id: i64,
    pub content: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A search request, already scoped to the conversations the caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub keyword: String,
    pub conversation_ids: Vec<i64>,
    /// Page number, from 1.
    pub page: u32,
    /// Hits per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

impl SearchQuery {
    /// Checks the keyword and paging, naming the offending field.
    pub fn validate(&self) -> Result<(), SearchError> {
        if self.keyword.trim().is_empty() {
            return Err(SearchError::invalid("keyword", "must not be empty"));
        }
        if self.keyword.chars().count() > MAX_KEYWORD_CHARS {
            return Err(SearchError::invalid(
                "keyword",
                format!("must be at most {MAX_KEYWORD_CHARS} characters"),
            ));
        }
        if self.page == 0 {
            return Err(SearchError::invalid("page", "must be 1 or more"));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(SearchError::invalid(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if self.conversation_ids.len() > MAX_CONVERSATIONS {
            return Err(SearchError::invalid(
                "conversation_ids",
                format!("must list at most {MAX_CONVERSATIONS} conversations"),
            ));
        }
        Ok(())
    }

    /// Number of hits before this page.
    pub fn offset(&self) -> usize {
        (self.page.saturating_sub(1) as usize).saturating_mul(self.page_size as usize)
    }
}

/// One matching message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub message_id: i64,
    pub conversation_id: i64,
    pub sender_id: i64,
    pub content: String,
    pub created_at: i64,
    /// HTML-escaped content with the matches wrapped in `<em>…</em>`.
    pub highlight: String,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPage {
    /// Exact number of matching messages.
    pub total: u64,
    pub hits: Vec<SearchHit>,
}

/// A search failure.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid `{field}`: {reason}")]
    InvalidQuery { field: &'static str, reason: String },
    #[error("tantivy operation `{operation}` failed")]
    Tantivy {
        operation: &'static str,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("opening the index directory {path} failed")]
    Directory {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Elasticsearch request `{operation}` failed")]
    Elasticsearch {
        operation: &'static str,
        #[source]
        source: elasticsearch::Error,
    },
    #[error("Elasticsearch request `{operation}` returned status {status}: {body}")]
    ElasticsearchStatus {
        operation: &'static str,
        status: u16,
        body: String,
    },
    #[error("Elasticsearch returned an unexpected response to `{operation}`: {reason}")]
    UnexpectedResponse {
        operation: &'static str,
        reason: String,
    },
    #[error("invalid Elasticsearch URL {url:?}")]
    InvalidUrl { url: String, reason: String },
    #[error("the indexing task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl SearchError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidQuery {
            field,
            reason: reason.into(),
        }
    }
}

/// Indexes and searches messages.
#[async_trait]
pub trait SearchEngine: Send + Sync {
    /// Adds or replaces documents, keyed by `message_id`.
    async fn index(&self, documents: &[MessageDocument]) -> Result<(), SearchError>;

    /// Removes documents by message id; unknown ids are ignored.
    async fn delete(&self, message_ids: &[i64]) -> Result<(), SearchError>;

    /// Runs a keyword search; see the module docs for the semantics.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError>;

    /// Makes every write so far visible to searches.
    async fn refresh(&self) -> Result<(), SearchError>;
}
