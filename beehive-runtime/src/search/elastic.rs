//! [`SearchEngine`] on Elasticsearch through the official `elasticsearch` crate.
//!
//! The index mapping carries the analysis: the `standard` tokenizer splits CJK text into single
//! characters, `cjk_bigram` joins neighbours into overlapping bigrams (a lone character stays a
//! unigram), then `lowercase` and the English `stemmer` handle Latin-script words. Each run of
//! the keyword becomes a `match_phrase` clause, so a CJK substring matches as consecutive
//! bigrams, as in the tantivy engine.

use std::time::Duration;

use async_trait::async_trait;
use elasticsearch::http::Url;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::indices::{IndicesCreateParts, IndicesExistsParts, IndicesRefreshParts};
use elasticsearch::{BulkParts, Elasticsearch, SearchParts};
use serde_json::{Value, json};

use super::query::parse_keyword;
use super::{MessageDocument, SearchEngine, SearchError, SearchHit, SearchPage, SearchQuery};

/// Default index name.
pub const DEFAULT_INDEX: &str = "beehive_messages";
/// Time allowed for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Elasticsearch's default `index.max_result_window`: the largest `from + size` it serves.
const MAX_RESULT_WINDOW: usize = 10_000;
/// Analyzer name defined in the mapping.
const CONTENT_ANALYZER: &str = "beehive_content";

/// Returns the index settings and mappings this engine creates.
pub fn index_mapping() -> Value {
    json!({
        "settings": {
            "analysis": {
                "filter": {
                    "beehive_english_stemmer": { "type": "stemmer", "language": "english" }
                },
                "analyzer": {
                    CONTENT_ANALYZER: {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["cjk_width", "cjk_bigram", "lowercase", "beehive_english_stemmer"]
                    }
                }
            }
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "message_id": { "type": "long" },
                "conversation_id": { "type": "long" },
                "sender_id": { "type": "long", "index": false },
                "content": { "type": "text", "analyzer": CONTENT_ANALYZER },
                "created_at": { "type": "long" }
            }
        }
    })
}

/// Searches messages in one Elasticsearch index.
#[derive(Debug, Clone)]
pub struct ElasticsearchEngine {
    client: Elasticsearch,
    index: String,
}

impl ElasticsearchEngine {
    /// Connects to the node at `url` and creates `index` with [`index_mapping`] when it does
    /// not exist.
    pub async fn connect(url: &str, index: &str) -> Result<Self, SearchError> {
        let parsed = Url::parse(url).map_err(|err| SearchError::InvalidUrl {
            url: url.to_owned(),
            reason: err.to_string(),
        })?;
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(parsed))
            .disable_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| SearchError::InvalidUrl {
                url: url.to_owned(),
                reason: err.to_string(),
            })?;
        let engine = Self {
            client: Elasticsearch::new(transport),
            index: index.to_owned(),
        };
        engine.ensure_index().await?;
        Ok(engine)
    }

    async fn ensure_index(&self) -> Result<(), SearchError> {
        let response = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[&self.index]))
            .send()
            .await
            .map_err(request_error("index exists"))?;
        if response.status_code().is_success() {
            return Ok(());
        }
        if response.status_code().as_u16() != 404 {
            return Err(status_error("index exists", response).await);
        }

        let response = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&self.index))
            .body(index_mapping())
            .send()
            .await
            .map_err(request_error("create index"))?;
        if !response.status_code().is_success() {
            return Err(status_error("create index", response).await);
        }
        tracing::info!(index = %self.index, "created the Elasticsearch index");
        Ok(())
    }

    async fn bulk(&self, operation: &'static str, lines: Vec<Value>) -> Result<(), SearchError> {
        let body: Vec<JsonBody<Value>> = lines.into_iter().map(JsonBody::new).collect();
        let response = self
            .client
            .bulk(BulkParts::Index(&self.index))
            .body(body)
            .send()
            .await
            .map_err(request_error(operation))?;
        let body = success_json(operation, response).await?;
        if body["errors"].as_bool() == Some(true) {
            let first = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item.as_object()?.values().next())
                .find(|result| result.get("error").is_some())
                .map(|result| result["error"].to_string())
                .unwrap_or_default();
            return Err(SearchError::UnexpectedResponse {
                operation,
                reason: format!("an item failed: {first}"),
            });
        }
        Ok(())
    }

    /// Builds the search request body; public so tests can check it.
    pub fn search_body(query: &SearchQuery) -> Option<Value> {
        let parts = parse_keyword(&query.keyword);
        if parts.is_empty() || query.conversation_ids.is_empty() {
            return None;
        }
        let must: Vec<Value> = parts
            .iter()
            .map(|part| json!({ "match_phrase": { "content": part.text } }))
            .collect();
        // Elasticsearch refuses `from + size` above `index.max_result_window` (10,000 by default).
        // Past that window only the total is requested, so the page comes back empty.
        // NOTE: hits beyond the first 10,000 are therefore unreachable by paging.
        let (from, size) = match query.offset().checked_add(query.page_size as usize) {
            Some(end) if end <= MAX_RESULT_WINDOW => (query.offset(), query.page_size as usize),
            _ => (0, 0),
        };
        Some(json!({
            "from": from,
            "size": size,
            "track_total_hits": true,
            "query": {
                "bool": {
                    "must": must,
                    "filter": [ { "terms": { "conversation_id": query.conversation_ids } } ]
                }
            },
            "sort": [ { "created_at": "desc" }, { "message_id": "desc" } ],
            "highlight": {
                "pre_tags": ["<em>"],
                "post_tags": ["</em>"],
                "encoder": "html",
                "number_of_fragments": 0,
                "fields": { "content": {} }
            }
        }))
    }
}

#[async_trait]
impl SearchEngine for ElasticsearchEngine {
    async fn index(&self, documents: &[MessageDocument]) -> Result<(), SearchError> {
        if documents.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(documents.len() * 2);
        for document in documents {
            lines.push(json!({ "index": { "_id": document.message_id.to_string() } }));
            lines.push(json!(document));
        }
        self.bulk("bulk index", lines).await?;
        tracing::debug!(index = %self.index, count = documents.len(), "indexed messages");
        Ok(())
    }

    async fn delete(&self, message_ids: &[i64]) -> Result<(), SearchError> {
        if message_ids.is_empty() {
            return Ok(());
        }
        let lines = message_ids
            .iter()
            .map(|id| json!({ "delete": { "_id": id.to_string() } }))
            .collect();
        self.bulk("bulk delete", lines).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        let Some(body) = Self::search_body(query) else {
            return Ok(SearchPage::default());
        };
        let response = self
            .client
            .search(SearchParts::Index(&[&self.index]))
            .body(body)
            .send()
            .await
            .map_err(request_error("search"))?;
        let body = success_json("search", response).await?;
        parse_search_response(&body)
    }

    async fn refresh(&self) -> Result<(), SearchError> {
        let response = self
            .client
            .indices()
            .refresh(IndicesRefreshParts::Index(&[&self.index]))
            .send()
            .await
            .map_err(request_error("refresh"))?;
        success_json("refresh", response).await.map(drop)
    }
}

fn parse_search_response(body: &Value) -> Result<SearchPage, SearchError> {
    let unexpected = |reason: &str| SearchError::UnexpectedResponse {
        operation: "search",
        reason: reason.to_owned(),
    };
    let total = body["hits"]["total"]["value"]
        .as_u64()
        .ok_or_else(|| unexpected("hits.total.value is missing"))?;
    let raw_hits = body["hits"]["hits"]
        .as_array()
        .ok_or_else(|| unexpected("hits.hits is missing"))?;

    let mut hits = Vec::with_capacity(raw_hits.len());
    for raw in raw_hits {
        let document: MessageDocument = serde_json::from_value(raw["_source"].clone())
            .map_err(|err| unexpected(&format!("a hit's _source is invalid: {err}")))?;
        let highlight = raw["highlight"]["content"][0]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| escape_html(&document.content));
        hits.push(SearchHit {
            message_id: document.message_id,
            conversation_id: document.conversation_id,
            sender_id: document.sender_id,
            content: document.content,
            created_at: document.created_at,
            highlight,
        });
    }
    Ok(SearchPage { total, hits })
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn success_json(operation: &'static str, response: Response) -> Result<Value, SearchError> {
    if !response.status_code().is_success() {
        return Err(status_error(operation, response).await);
    }
    response
        .json::<Value>()
        .await
        .map_err(request_error(operation))
}

async fn status_error(operation: &'static str, response: Response) -> SearchError {
    let status = response.status_code().as_u16();
    let body = response.text().await.unwrap_or_default();
    tracing::warn!(operation, status, body = %body, "Elasticsearch request failed");
    SearchError::ElasticsearchStatus {
        operation,
        status,
        body,
    }
}

fn request_error(operation: &'static str) -> impl Fn(elasticsearch::Error) -> SearchError {
    move |source| SearchError::Elasticsearch { operation, source }
}
