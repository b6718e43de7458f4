//! The Elasticsearch engine against recorded exchanges.
//!
//! Each fixture in `tests/fixtures/elasticsearch/` lists the requests the engine must send, in
//! order (method, path and JSON or NDJSON body), and the response to give to each. A small
//! HTTP server on 127.0.0.1 replays them and records every request that differs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use beehive_runtime::search::{
    DEFAULT_INDEX, ElasticsearchEngine, MessageDocument, SearchEngine, SearchError, SearchQuery,
    index_mapping,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone, serde::Deserialize)]
struct Fixture {
    exchanges: Vec<Exchange>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Exchange {
    request: RecordedRequest,
    response: RecordedResponse,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct RecordedRequest {
    method: String,
    path: String,
    /// JSON body, compared as a value.
    #[serde(default)]
    body: Option<Value>,
    /// NDJSON body (bulk requests), one value per line.
    #[serde(default)]
    ndjson: Option<Vec<Value>>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct RecordedResponse {
    status: u16,
    #[serde(default)]
    body: Option<Value>,
}

/// Replays one fixture and collects the differences it saw.
struct ReplayServer {
    url: String,
    state: Arc<Mutex<ReplayState>>,
}

#[derive(Default)]
struct ReplayState {
    remaining: std::collections::VecDeque<Exchange>,
    mismatches: Vec<String>,
}

impl ReplayServer {
    async fn start(fixture_name: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/elasticsearch")
            .join(fixture_name);
        let text = std::fs::read_to_string(&path).unwrap();
        let fixture: Fixture = serde_json::from_str(&text).unwrap();
        let state = Arc::new(Mutex::new(ReplayState {
            remaining: fixture.exchanges.into(),
            mismatches: Vec::new(),
        }));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server_state = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_connection(socket, Arc::clone(&server_state)));
            }
        });
        Self { url, state }
    }

    /// Fails the test when a request differed or a recorded exchange was never requested.
    fn assert_all_replayed(&self) {
        let state = self.state.lock().unwrap();
        assert_eq!(state.mismatches, Vec::<String>::new());
        let left: Vec<String> = state
            .remaining
            .iter()
            .map(|exchange| format!("{} {}", exchange.request.method, exchange.request.path))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "recorded requests never sent");
    }
}

async fn serve_connection(socket: tokio::net::TcpStream, state: Arc<Mutex<ReplayState>>) {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();

        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }

        let response = replay(&state, &method, &path, &body);
        let status_text = match response.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            _ => "Error",
        };
        let payload = match (&response.body, method.as_str()) {
            (_, "HEAD") | (None, _) => String::new(),
            (Some(body), _) => body.to_string(),
        };
        let head = format!(
            "HTTP/1.1 {} {status_text}\r\ncontent-type: application/json\r\nx-elastic-product: Elasticsearch\r\ncontent-length: {}\r\n\r\n",
            response.status,
            payload.len()
        );
        if write.write_all(head.as_bytes()).await.is_err()
            || write.write_all(payload.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// Matches one request against the next recorded exchange.
fn replay(state: &Mutex<ReplayState>, method: &str, path: &str, body: &[u8]) -> RecordedResponse {
    let mut state = state.lock().unwrap();
    let Some(exchange) = state.remaining.pop_front() else {
        state
            .mismatches
            .push(format!("unexpected request {method} {path}"));
        return RecordedResponse {
            status: 500,
            body: None,
        };
    };
    let expected = &exchange.request;
    if expected.method != method || expected.path != path {
        state.mismatches.push(format!(
            "expected {} {}, got {method} {path}",
            expected.method, expected.path
        ));
    }

    let text = String::from_utf8_lossy(body);
    if let Some(expected_body) = &expected.body {
        match serde_json::from_str::<Value>(&text) {
            Ok(actual) if actual == *expected_body => {}
            Ok(actual) => state.mismatches.push(format!(
                "{method} {path}: body differs\nexpected: {expected_body}\nactual:   {actual}"
            )),
            Err(err) => state
                .mismatches
                .push(format!("{method} {path}: invalid JSON body: {err}")),
        }
    }
    if let Some(expected_lines) = &expected.ndjson {
        let actual: Result<Vec<Value>, _> = text
            .lines()
            .filter(|line| !line.is_empty())
            .map(serde_json::from_str)
            .collect();
        match actual {
            Ok(actual) if actual == *expected_lines => {}
            Ok(actual) => state.mismatches.push(format!(
                "{method} {path}: NDJSON differs\nexpected: {expected_lines:?}\nactual:   {actual:?}"
            )),
            Err(err) => state.mismatches.push(format!("{method} {path}: invalid NDJSON: {err}")),
        }
        if !text.ends_with('\n') {
            state
                .mismatches
                .push(format!("{method} {path}: NDJSON must end with a newline"));
        }
    }
    if expected.body.is_none() && expected.ndjson.is_none() && !body.is_empty() {
        state
            .mismatches
            .push(format!("{method} {path}: unexpected body {text}"));
    }
    exchange.response.clone()
}

fn doc(message_id: i64, conversation_id: i64, content: &str, created_at: i64) -> MessageDocument {
    MessageDocument {
        message_id,
        conversation_id,
        sender_id: 100 + message_id,
        content: content.to_owned(),
        created_at,
    }
}

fn query(keyword: &str, conversation_ids: &[i64], page: u32, page_size: u32) -> SearchQuery {
    SearchQuery {
        keyword: keyword.to_owned(),
        conversation_ids: conversation_ids.to_vec(),
        page,
        page_size,
    }
}

#[test]
fn fixture_mapping_matches_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elasticsearch/create_index_and_search.json");
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        fixture.exchanges[1].request.body.as_ref(),
        Some(&index_mapping())
    );
}

#[tokio::test]
async fn create_index_and_search() {
    let server = ReplayServer::start("create_index_and_search.json").await;

    let engine = ElasticsearchEngine::connect(&server.url, DEFAULT_INDEX)
        .await
        .unwrap();
    engine
        .index(&[
            doc(1, 1, "还有可能是定期检修", 1_000),
            doc(2, 1, "I will check the pipes tomorrow", 1_001),
            doc(3, 2, "可能吧，我不确定", 1_002),
        ])
        .await
        .unwrap();
    engine.refresh().await.unwrap();

    let page = engine.search(&query("可能", &[1, 2], 1, 20)).await.unwrap();
    assert_eq!(page.total, 2);
    let found: Vec<(i64, &str)> = page
        .hits
        .iter()
        .map(|hit| (hit.message_id, hit.highlight.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (3, "<em>可能</em>吧，我不确定"),
            (1, "还有<em>可能</em>是定期检修")
        ]
    );
    assert_eq!(page.hits[1].content, "还有可能是定期检修");
    assert_eq!(page.hits[1].sender_id, 101);
    assert_eq!(page.hits[1].created_at, 1_000);

    let page = engine.search(&query("定期检", &[1], 2, 1)).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.hits, Vec::new());

    let page = engine
        .search(&query("Checking", &[1], 1, 20))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.hits[0].message_id, 2);
    assert_eq!(
        page.hits[0].highlight,
        "I will <em>check</em> the pipes tomorrow"
    );

    server.assert_all_replayed();
}

#[tokio::test]
async fn existing_index_and_delete() {
    let server = ReplayServer::start("existing_index_and_delete.json").await;

    let engine = ElasticsearchEngine::connect(&server.url, DEFAULT_INDEX)
        .await
        .unwrap();
    engine.delete(&[2, 3]).await.unwrap();
    let page = engine.search(&query("check", &[1], 1, 10)).await.unwrap();

    assert_eq!(page.total, 1);
    assert_eq!(page.hits.len(), 1);
    // A hit without a highlight falls back to the escaped content.
    assert_eq!(page.hits[0].highlight, "&lt;b&gt;check&lt;/b&gt; &amp; co");

    let empty = engine.search(&query("可能", &[], 1, 10)).await.unwrap();
    assert_eq!(empty.total, 0);

    server.assert_all_replayed();
}

#[tokio::test]
async fn failures_are_reported() {
    let server = ReplayServer::start("failures.json").await;

    let engine = ElasticsearchEngine::connect(&server.url, DEFAULT_INDEX)
        .await
        .unwrap();
    let bulk = engine.index(&[doc(9, 1, "bad", 1)]).await;
    assert!(
        matches!(&bulk, Err(SearchError::UnexpectedResponse { reason, .. }) if reason.contains("mapper_parsing_exception")),
        "{bulk:?}"
    );
    let search = engine.search(&query("可能", &[1], 1, 10)).await;
    assert!(
        matches!(
            search,
            Err(SearchError::ElasticsearchStatus { status: 400, .. })
        ),
        "{search:?}"
    );
    let invalid = engine.search(&query("", &[1], 1, 10)).await;
    assert!(matches!(
        invalid,
        Err(SearchError::InvalidQuery {
            field: "keyword",
            ..
        })
    ));

    server.assert_all_replayed();
}
