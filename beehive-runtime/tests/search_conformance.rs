//! One conformance suite for the search engines: tantivy always, Elasticsearch when
//! `BEEHIVE_TEST_ELASTICSEARCH_URL` names a live node (no server runs on the CI machines, so the
//! Elasticsearch backend is otherwise covered by recorded exchanges in `search_elasticsearch`).

use std::time::Duration;

use beehive_runtime::search::{
    ElasticsearchEngine, MessageDocument, SearchEngine, SearchError, SearchPage, SearchQuery,
    TantivyEngine,
};

/// Variable naming a live Elasticsearch node for the optional run of this suite.
const ELASTICSEARCH_URL_VAR: &str = "BEEHIVE_TEST_ELASTICSEARCH_URL";
/// The latest a write may take to become searchable without an explicit refresh.
const VISIBILITY_DEADLINE: Duration = Duration::from_secs(2);

fn doc(message_id: i64, conversation_id: i64, content: &str, created_at: i64) -> MessageDocument {
    MessageDocument {
        message_id,
        conversation_id,
        sender_id: 100 + message_id,
        content: content.to_owned(),
        created_at,
    }
}

fn query(keyword: &str, conversation_ids: &[i64]) -> SearchQuery {
    SearchQuery {
        keyword: keyword.to_owned(),
        conversation_ids: conversation_ids.to_vec(),
        page: 1,
        page_size: 20,
    }
}

fn ids(page: &SearchPage) -> Vec<i64> {
    page.hits.iter().map(|hit| hit.message_id).collect()
}

async fn seed(engine: &dyn SearchEngine) {
    engine
        .index(&[
            doc(1, 1, "还有可能是定期检修", 1_000),
            doc(2, 1, "I will check the pipes tomorrow", 1_001),
            doc(3, 2, "可能吧，我不确定", 1_002),
            doc(4, 1, "今天天气不错", 1_003),
            doc(5, 3, "Checking <b>again</b> & again", 1_004),
        ])
        .await
        .unwrap();
    engine.refresh().await.unwrap();
}

async fn cjk_substrings_match(engine: &dyn SearchEngine) {
    seed(engine).await;

    let page = engine.search(&query("可能", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
    assert_eq!(page.total, 1);
    assert_eq!(page.hits[0].highlight, "还有<em>可能</em>是定期检修");
    assert_eq!(page.hits[0].content, "还有可能是定期检修");
    assert_eq!(page.hits[0].conversation_id, 1);
    assert_eq!(page.hits[0].sender_id, 101);
    assert_eq!(page.hits[0].created_at, 1_000);

    let page = engine.search(&query("定期检", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
    assert_eq!(page.hits[0].highlight, "还有可能是<em>定期检</em>修");

    for keyword in ["能是定", "是定期检修", "还有可能是定期检修", "检修"] {
        let page = engine.search(&query(keyword, &[1])).await.unwrap();
        assert_eq!(ids(&page), vec![1], "keyword {keyword}");
    }
    for keyword in ["检修是", "定检", "可能定期"] {
        let page = engine.search(&query(keyword, &[1])).await.unwrap();
        assert_eq!(page.total, 0, "keyword {keyword} matched {:?}", ids(&page));
    }
}

async fn english_words_are_stemmed(engine: &dyn SearchEngine) {
    seed(engine).await;

    let page = engine.search(&query("checking", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![2]);
    assert_eq!(
        page.hits[0].highlight,
        "I will <em>check</em> the pipes tomorrow"
    );

    let page = engine.search(&query("CHECK pipe", &[1, 3])).await.unwrap();
    assert_eq!(ids(&page), vec![2]);

    let page = engine.search(&query("check", &[1, 3])).await.unwrap();
    assert_eq!(ids(&page), vec![5, 2]);
    assert_eq!(
        page.hits[0].highlight,
        "<em>Checking</em> &lt;b&gt;again&lt;/b&gt; &amp; again"
    );
}

async fn conversation_filter_excludes(engine: &dyn SearchEngine) {
    seed(engine).await;

    let page = engine.search(&query("可能", &[1, 2])).await.unwrap();
    assert_eq!(ids(&page), vec![3, 1]);
    assert_eq!(page.total, 2);

    let page = engine.search(&query("可能", &[2])).await.unwrap();
    assert_eq!(ids(&page), vec![3]);

    let page = engine.search(&query("可能", &[4, 5])).await.unwrap();
    assert_eq!(page, SearchPage::default());

    let page = engine.search(&query("可能", &[])).await.unwrap();
    assert_eq!(page, SearchPage::default());
}

async fn upsert_and_delete(engine: &dyn SearchEngine) {
    seed(engine).await;

    engine
        .index(&[doc(1, 1, "改成了明天开会", 1_000)])
        .await
        .unwrap();
    engine.delete(&[2, 999]).await.unwrap();
    engine.refresh().await.unwrap();

    assert_eq!(engine.search(&query("可能", &[1])).await.unwrap().total, 0);
    let page = engine.search(&query("明天", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
    assert_eq!(engine.search(&query("check", &[1])).await.unwrap().total, 0);
}

async fn pages_report_exact_total(engine: &dyn SearchEngine) {
    let documents: Vec<MessageDocument> = (1..=25)
        .map(|n| doc(1_000 + n, 9, &format!("hello world number {n}"), 5_000 + n))
        .collect();
    engine.index(&documents).await.unwrap();
    engine.refresh().await.unwrap();

    let mut request = query("hello", &[9]);
    request.page_size = 10;
    let first = engine.search(&request).await.unwrap();
    assert_eq!(first.total, 25);
    assert_eq!(ids(&first), (1_016..=1_025).rev().collect::<Vec<_>>());

    request.page = 3;
    let last = engine.search(&request).await.unwrap();
    assert_eq!(last.total, 25);
    assert_eq!(ids(&last), (1_001..=1_005).rev().collect::<Vec<_>>());

    request.page = 4;
    let past_end = engine.search(&request).await.unwrap();
    assert_eq!(past_end.total, 25);
    assert_eq!(past_end.hits, Vec::new());

    // The largest page a client can send must not make the engine reserve room for its offset.
    request.page = u32::try_from(i32::MAX).unwrap();
    request.page_size = 100;
    let far_past_end = engine.search(&request).await.unwrap();
    assert_eq!(far_past_end.total, 25);
    assert_eq!(far_past_end.hits, Vec::new());
}

async fn writes_visible_without_refresh(engine: &dyn SearchEngine) {
    engine
        .index(&[doc(77, 7, "新消息马上能搜到", 9_000)])
        .await
        .unwrap();

    let started = tokio::time::Instant::now();
    loop {
        let page = engine.search(&query("搜到", &[7])).await.unwrap();
        if page.total == 1 {
            break;
        }
        assert!(
            started.elapsed() < VISIBILITY_DEADLINE,
            "the message was not searchable within {VISIBILITY_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn invalid_queries_are_rejected(engine: &dyn SearchEngine) {
    let cases = [
        (query("  ", &[1]), "keyword"),
        (query(&"长".repeat(201), &[1]), "keyword"),
        (
            SearchQuery {
                page: 0,
                ..query("可能", &[1])
            },
            "page",
        ),
        (
            SearchQuery {
                page_size: 0,
                ..query("可能", &[1])
            },
            "page_size",
        ),
        (
            SearchQuery {
                page_size: 101,
                ..query("可能", &[1])
            },
            "page_size",
        ),
    ];
    for (request, expected_field) in cases {
        match engine.search(&request).await {
            Err(SearchError::InvalidQuery { field, .. }) => assert_eq!(field, expected_field),
            other => panic!("{request:?} returned {other:?}"),
        }
    }

    let page = engine.search(&query("，。！", &[1])).await.unwrap();
    assert_eq!(page, SearchPage::default());
}

macro_rules! conformance_tests {
    ($($case:ident),* $(,)?) => {
        mod tantivy {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let engine = TantivyEngine::open(dir.path().join("search")).unwrap();
                    super::$case(&engine).await;
                }
            )*
        }

        mod elasticsearch {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(url) = std::env::var(ELASTICSEARCH_URL_VAR).ok().filter(|url| !url.is_empty()) else {
                        eprintln!("skipped: {ELASTICSEARCH_URL_VAR} is unset; the recorded exchanges in search_elasticsearch cover this backend");
                        return;
                    };
                    let index = format!("beehive_test_{}", uuid::Uuid::new_v4().simple());
                    let engine = ElasticsearchEngine::connect(&url, &index).await.unwrap();
                    super::$case(&engine).await;
                }
            )*
        }
    };
}

conformance_tests!(
    cjk_substrings_match,
    english_words_are_stemmed,
    conversation_filter_excludes,
    upsert_and_delete,
    pages_report_exact_total,
    writes_visible_without_refresh,
    invalid_queries_are_rejected,
);

#[tokio::test]
async fn index_reopens_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = TantivyEngine::open(dir.path()).unwrap();
        seed(&engine).await;
    }
    let engine = TantivyEngine::open(dir.path()).unwrap();
    assert_eq!(engine.num_docs(), 5);
    let page = engine.search(&query("定期检", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
}

#[tokio::test]
async fn drop_commits_pending_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = TantivyEngine::open(dir.path()).unwrap();
        engine
            .index(&[doc(7, 1, "sent just before shutdown", 1_000)])
            .await
            .unwrap();
        // Dropped at once, well within the 500 ms between automatic commits.
    }
    let engine = TantivyEngine::open(dir.path()).unwrap();
    assert_eq!(engine.num_docs(), 1);
    let page = engine.search(&query("shutdown", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![7]);
}

#[tokio::test]
async fn characters_emoji_and_accents_match() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TantivyEngine::open(dir.path()).unwrap();
    engine
        .index(&[
            doc(1, 1, "我想去北京", 1_000),
            doc(2, 1, "你好", 1_001),
            doc(3, 1, "Rust 🦀 rocks", 1_002),
            doc(4, 1, "Meet at the café", 1_003),
            doc(5, 1, "北", 1_004),
        ])
        .await
        .unwrap();
    engine.refresh().await.unwrap();

    let page = engine.search(&query("我", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
    assert_eq!(page.hits[0].highlight, "<em>我</em>想去北京");
    let page = engine.search(&query("北", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![5, 1]);
    assert_eq!(page.hits[1].highlight, "我想去<em>北</em>京");
    let page = engine.search(&query("京", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
    // Substrings of two or more characters still match only where they occur.
    let page = engine.search(&query("去北京", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![1]);
    assert_eq!(page.hits[0].highlight, "我想<em>去北京</em>");
    let page = engine.search(&query("北想", &[1])).await.unwrap();
    assert_eq!(page.total, 0);

    let page = engine.search(&query("🦀", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![3]);
    assert_eq!(page.hits[0].highlight, "Rust <em>🦀</em> rocks");

    let page = engine.search(&query("cafe", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![4]);
    assert_eq!(page.hits[0].highlight, "Meet at the <em>café</em>");
    let page = engine.search(&query("CAFÉ", &[1])).await.unwrap();
    assert_eq!(ids(&page), vec![4]);
}
