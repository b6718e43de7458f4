//! SendMessage → `message.index` → SearchMessages, membership rules, paging and the internal
//! RPCs, over gRPC.

mod support;

use std::time::Duration;

use beehive_generated::pb::chat::{CreateConversationRequest, RemoveMembersRequest};
use beehive_generated::pb::message::SendMessageRequest;
use beehive_generated::pb::search::{
    DeleteMessageIndexRequest, IndexMessageRequest, SearchMessagesRequest,
};
use beehive_search::reindex::{ReindexProgress, reindex};
use support::{Stack, backends};
use tonic::Code;

const ALICE: i64 = 31;
const BOB: i64 = 32;
const CAROL: i64 = 33;
/// How soon a sent message must be searchable.
const INDEX_LATENCY: Duration = Duration::from_secs(2);
/// How soon a removed member must stop seeing hits.
const MEMBERSHIP_LATENCY: Duration = Duration::from_secs(5);

impl Stack {
    async fn conversation(&self, kind: i32, owner: i64, members: &[i64]) -> i64 {
        let request = CreateConversationRequest {
            r#type: kind,
            name: "talk".to_owned(),
            owner_id: owner,
            member_ids: members.to_vec(),
        };
        self.chat
            .create_conversation(self.as_user(owner, request))
            .await
            .expect("create conversation")
            .conversation_id
    }

    async fn send(
        &self,
        conversation_id: i64,
        sender: i64,
        content_type: i32,
        content: &str,
    ) -> i64 {
        let request = SendMessageRequest {
            conversation_id,
            sender_id: sender,
            content_type,
            content: content.to_owned(),
            ..SendMessageRequest::default()
        };
        self.message
            .send_message(self.as_user(sender, request))
            .await
            .expect("send")
            .message_id
    }

    async fn index(&self, message_id: i64, conversation_id: i64, content: &str) {
        let request = IndexMessageRequest {
            message_id,
            conversation_id,
            sender_id: ALICE,
            content: content.to_owned(),
            created_at: 1_700_000_000 + message_id,
        };
        let response = self
            .search
            .index_message(self.as_service(request))
            .await
            .expect("index");
        assert!(response.success);
    }
}

#[tokio::test]
async fn chinese_substring_found_end_to_end() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let conversation = stack.conversation(1, ALICE, &[BOB]).await;
        let message_id = stack
            .send(conversation, ALICE, 1, "还有可能是定期检修")
            .await;

        let (found, waited) = stack
            .search_until(BOB, "可能", INDEX_LATENCY, |response| response.total > 0)
            .await;

        assert!(
            waited <= INDEX_LATENCY,
            "{backend:?}: searchable after {waited:?}"
        );
        assert_eq!(found.total, 1, "{backend:?}");
        assert_eq!(found.messages.len(), 1);
        let hit = &found.messages[0];
        assert_eq!(hit.message_id, message_id);
        assert_eq!(hit.conversation_id, conversation);
        assert_eq!(hit.sender_id, ALICE);
        assert_eq!(hit.content, "还有可能是定期检修");
        assert!(hit.highlight.contains("<em>可能</em>"), "{}", hit.highlight);
        assert!(hit.created_at > 0);
        let sender_view = stack.search_as(ALICE, "定期检修").await.expect("search");
        assert_eq!(sender_view.total, 1);
        stack.stop().await;
    }
}

#[tokio::test]
async fn characters_emoji_and_accents_found() {
    let stack = Stack::start(support::Backend::Sqlite).await;
    let conversation = stack.conversation(1, ALICE, &[BOB]).await;
    let chinese = stack.send(conversation, ALICE, 1, "我明天去北京").await;
    let crab = stack.send(conversation, ALICE, 1, "Rust 🦀 rocks").await;
    let cafe = stack
        .send(conversation, ALICE, 1, "See you at the café")
        .await;
    stack
        .search_until(BOB, "café", INDEX_LATENCY, |response| response.total > 0)
        .await;

    let cases = [
        ("我", chinese, "<em>我</em>明天去北京"),
        ("北", chinese, "我明天去<em>北</em>京"),
        ("🦀", crab, "Rust <em>🦀</em> rocks"),
        ("cafe", cafe, "See you at the <em>café</em>"),
    ];
    for (keyword, message_id, highlight) in cases {
        let found = stack.search_as(BOB, keyword).await.expect("search");
        assert_eq!(found.total, 1, "{keyword}");
        assert_eq!(found.messages[0].message_id, message_id, "{keyword}");
        assert_eq!(found.messages[0].highlight, highlight, "{keyword}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn non_member_sees_no_hits() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let private = stack.conversation(1, ALICE, &[BOB]).await;
        stack
            .send(private, ALICE, 1, "the secret rendezvous is at noon")
            .await;
        let (seen, _) = stack
            .search_until(BOB, "rendezvous", INDEX_LATENCY, |response| {
                response.total > 0
            })
            .await;
        assert_eq!(seen.total, 1, "{backend:?}");

        let outsider = stack.search_as(CAROL, "rendezvous").await.expect("search");
        assert_eq!(outsider.total, 0, "{backend:?}");
        assert!(outsider.messages.is_empty());
        let other = stack.conversation(1, CAROL, &[BOB]).await;
        stack.send(other, CAROL, 1, "lunch at noon?").await;
        let (mixed, _) = stack
            .search_until(
                CAROL,
                "noon",
                // Carol's empty conversation list from the search above stays cached meanwhile.
                MEMBERSHIP_LATENCY + INDEX_LATENCY,
                |response| response.total > 0,
            )
            .await;
        assert_eq!(mixed.total, 1, "Carol sees only her own conversation");
        assert_eq!(mixed.messages[0].conversation_id, other);

        let narrowed = SearchMessagesRequest {
            keyword: "rendezvous".to_owned(),
            user_id: CAROL,
            conversation_id: private,
            ..SearchMessagesRequest::default()
        };
        let denied = stack
            .search
            .search_messages(stack.as_user(CAROL, narrowed.clone()))
            .await
            .expect_err("not a member");
        assert_eq!(denied.code(), Code::PermissionDenied);
        let missing = SearchMessagesRequest {
            keyword: "rendezvous".to_owned(),
            user_id: CAROL,
            conversation_id: private + 1000,
            ..SearchMessagesRequest::default()
        };
        let not_found = stack
            .search
            .search_messages(stack.as_user(CAROL, missing))
            .await
            .expect_err("no such conversation");
        assert_eq!(not_found.code(), Code::NotFound, "{backend:?}");
        assert!(
            not_found.to_string().contains("conversation_id"),
            "{not_found}"
        );
        let impersonated = stack
            .search
            .search_messages(stack.as_user(BOB, narrowed))
            .await
            .expect_err("acting for another user");
        assert_eq!(impersonated.code(), Code::PermissionDenied);
        stack.stop().await;
    }
}

#[tokio::test]
async fn removed_member_stops_seeing_hits() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let group = stack.conversation(2, ALICE, &[BOB, CAROL]).await;
        stack.send(group, ALICE, 1, "quarterly budget review").await;
        let (seen, _) = stack
            .search_until(CAROL, "budget", INDEX_LATENCY, |response| {
                response.total > 0
            })
            .await;
        assert_eq!(seen.total, 1, "{backend:?}");

        let remove = RemoveMembersRequest {
            conversation_id: group,
            user_ids: vec![CAROL],
        };
        stack
            .chat
            .remove_members(stack.as_user(ALICE, remove))
            .await
            .expect("remove Carol");
        let (after, waited) = stack
            .search_until(
                CAROL,
                "budget",
                MEMBERSHIP_LATENCY + Duration::from_secs(1),
                |response| response.total == 0,
            )
            .await;

        assert_eq!(
            after.total, 0,
            "{backend:?}: still visible after {waited:?}"
        );
        assert!(waited <= MEMBERSHIP_LATENCY, "hidden only after {waited:?}");
        let bob = stack.search_as(BOB, "budget").await.expect("search");
        assert_eq!(bob.total, 1);
        stack.stop().await;
    }
}

#[tokio::test]
async fn only_text_messages_are_indexed() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let conversation = stack.conversation(1, ALICE, &[BOB]).await;
        stack
            .send(
                conversation,
                ALICE,
                2,
                "https://img.example/photo-sunset.png",
            )
            .await;
        stack
            .send(conversation, ALICE, 1, "a sunset photo for you")
            .await;

        let (found, _) = stack
            .search_until(BOB, "sunset", INDEX_LATENCY, |response| response.total > 0)
            .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let settled = stack.search_as(BOB, "sunset").await.expect("search");

        assert_eq!(found.total, 1, "{backend:?}");
        assert_eq!(settled.total, 1);
        assert_eq!(settled.messages[0].content, "a sunset photo for you");
        stack.stop().await;
    }
}

#[tokio::test]
async fn paging_and_keyword_rules() {
    let stack = Stack::start(support::Backend::Sqlite).await;
    let conversation = stack.conversation(1, ALICE, &[BOB]).await;
    for message_id in 1..=25 {
        stack
            .index(
                message_id,
                conversation,
                &format!("status report number {message_id}"),
            )
            .await;
    }
    stack.engine.refresh().await.expect("refresh");
    let page = |page: i32, page_size: i32| SearchMessagesRequest {
        keyword: "report".to_owned(),
        user_id: BOB,
        conversation_id: 0,
        page,
        page_size,
    };
    let search = |request: SearchMessagesRequest| {
        let request = stack.as_user(BOB, request);
        let client = stack.search.clone();
        async move { client.search_messages(request).await }
    };

    let first = search(page(0, 0)).await.expect("page 0");
    assert_eq!(first.total, 25);
    assert_eq!(first.messages.len(), 20);
    assert_eq!(first.messages[0].message_id, 25, "newest first");
    let same = search(page(1, 0)).await.expect("page 1");
    assert_eq!(same.messages, first.messages);
    let second = search(page(2, 20)).await.expect("page 2");
    assert_eq!(second.messages.len(), 5);
    assert_eq!(second.total, 25);
    let past_end = search(page(10, 20)).await.expect("page 10");
    assert!(past_end.messages.is_empty());
    assert_eq!(past_end.total, 25);
    let capped = search(page(1, 500)).await.expect("large page");
    assert_eq!(capped.messages.len(), 25);
    assert!(
        first.messages[0].highlight.contains("<em>report</em>"),
        "{}",
        first.messages[0].highlight
    );

    let long = "词".repeat(201);
    for keyword in ["", "   ", long.as_str()] {
        let mut request = page(1, 20);
        request.keyword = keyword.to_owned();
        let status = search(request).await.expect_err("invalid keyword");
        assert_eq!(status.code(), Code::InvalidArgument, "{keyword:?}");
        assert!(status.to_string().contains("keyword"), "{status}");
    }
    let at_limit = "词".repeat(200);
    let mut request = page(1, 20);
    request.keyword = at_limit;
    let empty = search(request).await.expect("200 characters are allowed");
    assert_eq!(empty.total, 0);
    stack.stop().await;
}

#[tokio::test]
async fn internal_rpcs_need_service_token() {
    let stack = Stack::start(support::Backend::Sqlite).await;
    let conversation = stack.conversation(1, ALICE, &[BOB]).await;
    let request = IndexMessageRequest {
        message_id: 900,
        conversation_id: conversation,
        sender_id: ALICE,
        content: "deploy the hotfix tonight".to_owned(),
        created_at: 1_700_000_000,
    };

    let denied = stack
        .search
        .index_message(stack.as_user(ALICE, request.clone()))
        .await
        .expect_err("user token");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let anonymous = stack
        .search
        .index_message(tonic::Request::new(request.clone()))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    stack.engine.refresh().await.expect("refresh");
    assert_eq!(
        stack.search_as(BOB, "hotfix").await.expect("search").total,
        0
    );

    for _ in 0..2 {
        stack
            .search
            .index_message(stack.as_service(request.clone()))
            .await
            .expect("index");
    }
    stack.engine.refresh().await.expect("refresh");
    let indexed = stack.search_as(BOB, "hotfix").await.expect("search");
    assert_eq!(indexed.total, 1, "indexing twice keeps one entry");

    let delete = DeleteMessageIndexRequest { message_id: 900 };
    let user_delete = stack
        .search
        .delete_message_index(stack.as_user(ALICE, delete))
        .await
        .expect_err("user token");
    assert_eq!(user_delete.code(), Code::PermissionDenied);
    for _ in 0..2 {
        let response = stack
            .search
            .delete_message_index(stack.as_service(delete))
            .await
            .expect("delete");
        assert!(response.success);
    }
    stack.engine.refresh().await.expect("refresh");
    assert_eq!(
        stack.search_as(BOB, "hotfix").await.expect("search").total,
        0
    );
    stack.stop().await;
}

#[tokio::test]
async fn reindex_rebuilds_from_messages() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let conversation = stack.conversation(1, ALICE, &[BOB]).await;
        for index in 0..7 {
            stack
                .send(conversation, ALICE, 1, &format!("inventory check {index}"))
                .await;
        }
        stack
            .send(conversation, ALICE, 3, "inventory voice note")
            .await;

        let fresh = beehive_runtime::search::TantivyEngine::in_memory().expect("index");
        let mut seen = Vec::new();
        let done = reindex(&stack.db, &fresh, 3, |progress: &ReindexProgress| {
            seen.push(*progress)
        })
        .await
        .expect("reindex");

        assert_eq!(done.indexed, 7, "{backend:?}");
        assert_eq!(done.total, 7);
        let indexed: Vec<u64> = seen.iter().map(|progress| progress.indexed).collect();
        assert_eq!(indexed, vec![0, 3, 6, 7]);
        assert!(seen.iter().all(|progress| progress.total == 7));
        let query = beehive_runtime::search::SearchQuery {
            keyword: "inventory".to_owned(),
            conversation_ids: vec![conversation],
            page: 1,
            page_size: 20,
        };
        let found = beehive_runtime::search::SearchEngine::search(&fresh, &query)
            .await
            .expect("search");
        assert_eq!(found.total, 7);
        let again = reindex(&stack.db, &fresh, 100, |_| {})
            .await
            .expect("reindex again");
        assert_eq!(again.indexed, 7);
        let repeated = beehive_runtime::search::SearchEngine::search(&fresh, &query)
            .await
            .expect("search");
        assert_eq!(repeated.total, 7, "a second rebuild adds nothing");
        stack.stop().await;
    }
}

#[tokio::test]
async fn shutdown_keeps_fresh_writes() {
    let stack = Stack::start(support::Backend::Sqlite).await;
    let conversation = stack.conversation(1, ALICE, &[BOB]).await;
    for message_id in 1..=5 {
        stack
            .index(
                message_id,
                conversation,
                &format!("lantern number {message_id}"),
            )
            .await;
    }
    // Stopped at once, within the 500 ms between automatic commits.
    let data_dir = stack.stop().await;

    let reopened = beehive_runtime::search::TantivyEngine::open(data_dir.path().join("search"))
        .expect("reopen index");
    let query = beehive_runtime::search::SearchQuery {
        keyword: "lantern".to_owned(),
        conversation_ids: vec![conversation],
        page: 1,
        page_size: 20,
    };
    let found = beehive_runtime::search::SearchEngine::search(&reopened, &query)
        .await
        .expect("search");
    assert_eq!(found.total, 5);
}
