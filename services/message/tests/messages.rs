//! End-to-end tests of the message service with the chat service, over real gRPC, on SQLite
//! and (when the variables are set) PostgreSQL + Redis.

mod support;

use std::collections::HashSet;

use beehive_generated::pb::chat::{
    CreateConversationRequest, GetConversationsRequest, MarkReadRequest,
};
use beehive_generated::pb::message::{
    GetConversationStatsRequest, GetMessageDetailRequest, GetMessagesRequest, MessageInfo,
    SendMessageRequest, UpdateMessageStatusRequest,
};
use beehive_message::membership::MEMBER_CACHE_TTL;
use beehive_runtime::bus::{InProcessBus, RetryPolicy};
use beehive_runtime::config::Config;
use std::sync::Arc;
use std::time::Duration;
use support::{Backends, Env, assert_not_found, code};
use tonic::Code;

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;

fn text(conversation_id: i64, sender_id: i64, content: &str) -> SendMessageRequest {
    SendMessageRequest {
        conversation_id,
        sender_id,
        content_type: 1,
        content: content.to_owned(),
        ..SendMessageRequest::default()
    }
}

async fn single_chat(env: &Env, a: i64, b: i64) -> i64 {
    env.friends.befriend(a, b);
    env.chat
        .create_conversation(env.as_user(
            a,
            CreateConversationRequest {
                r#type: 1,
                owner_id: a,
                member_ids: vec![b],
                ..CreateConversationRequest::default()
            },
        ))
        .await
        .unwrap()
        .conversation_id
}

async fn group(env: &Env, owner: i64, members: &[i64]) -> i64 {
    env.chat
        .create_conversation(env.as_user(
            owner,
            CreateConversationRequest {
                r#type: 2,
                name: "group".to_owned(),
                owner_id: owner,
                member_ids: members.to_vec(),
            },
        ))
        .await
        .unwrap()
        .conversation_id
}

async fn send(env: &Env, request: SendMessageRequest) -> i64 {
    let sender = request.sender_id;
    env.message
        .send_message(env.as_user(sender, request))
        .await
        .unwrap()
        .message_id
}

async fn unread(env: &Env, user_id: i64, conversation_id: i64) -> i32 {
    let listed = env
        .chat
        .get_conversations(env.as_user(user_id, GetConversationsRequest { user_id }))
        .await
        .unwrap();
    listed
        .conversations
        .iter()
        .find(|info| info.conversation_id == conversation_id)
        .map(|info| info.unread_count)
        .expect("conversation listed")
}

/// Walks the whole history with `before_id` cursors, newest first.
async fn walk_history(
    env: &Env,
    reader: i64,
    conversation_id: i64,
    limit: i32,
) -> Vec<MessageInfo> {
    let mut all = Vec::new();
    let mut before_id = 0;
    loop {
        let page = env
            .message
            .get_messages(env.as_user(
                reader,
                GetMessagesRequest {
                    conversation_id,
                    before_id,
                    limit,
                },
            ))
            .await
            .unwrap();
        let Some(last) = page.messages.last() else {
            assert!(!page.has_more, "an empty page reports has_more");
            break;
        };
        before_id = last.message_id;
        all.extend(page.messages.iter().cloned());
        if !page.has_more {
            break;
        }
    }
    all
}

async fn concurrent_senders(env: Env) {
    let senders: Vec<i64> = (100..120).collect();
    let conversation_id = group(&env, senders[0], &senders[1..]).await;
    let mut tasks = Vec::new();
    for &sender in &senders {
        let clients = env.clients();
        tasks.push(tokio::spawn(async move {
            for n in 0..50 {
                let content = format!("{sender}-{n}");
                clients
                    .send(text(conversation_id, sender, &content))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    assert_eq!(env.count("messages").await, 1000);
    let seqs: Vec<i64> = {
        let history = walk_history(&env, senders[0], conversation_id, 100).await;
        let ids: HashSet<i64> = history.iter().map(|m| m.message_id).collect();
        assert_eq!(history.len(), 1000);
        assert_eq!(ids.len(), 1000, "a message appeared on two pages");
        history.iter().map(|m| m.seq).collect()
    };
    let expected: Vec<i64> = (1..=1000).rev().collect();
    assert_eq!(
        seqs, expected,
        "seq runs 1..=1000 with no gap, newest first"
    );
    let max_seq = env
        .scalar(&format!(
            "SELECT MAX(seq) AS n FROM messages WHERE conversation_id = {conversation_id}"
        ))
        .await;
    assert_eq!(max_seq, 1000);
    // Each sender's messages keep their order.
    let history = walk_history(&env, senders[0], conversation_id, 37).await;
    assert_eq!(history.len(), 1000);
    for &sender in &senders {
        let mine: Vec<String> = history
            .iter()
            .rev()
            .filter(|m| m.sender_id == sender)
            .map(|m| m.content.clone())
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("{sender}-{n}")).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_sqlite() {
    concurrent_senders(Env::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_postgres() {
    let Some(backends) = Backends::real() else {
        return;
    };
    let bus = Arc::new(InProcessBus::new(RetryPolicy::default()));
    concurrent_senders(Env::start(&backends, bus).await).await;
}

async fn unread_counts(env: Env) {
    let chat = single_chat(&env, ALICE, BOB).await;
    for n in 0..3 {
        send(&env, text(chat, ALICE, &format!("hello {n}"))).await;
    }
    assert_eq!(unread(&env, BOB, chat).await, 3);
    assert_eq!(unread(&env, ALICE, chat).await, 0);

    env.chat
        .mark_read(env.as_user(
            BOB,
            MarkReadRequest {
                conversation_id: chat,
                user_id: BOB,
            },
        ))
        .await
        .unwrap();
    assert_eq!(unread(&env, BOB, chat).await, 0);
    send(&env, text(chat, BOB, "reply")).await;
    assert_eq!(unread(&env, BOB, chat).await, 0);
    assert_eq!(unread(&env, ALICE, chat).await, 1);
    send(&env, text(chat, ALICE, "again")).await;
    assert_eq!(unread(&env, BOB, chat).await, 1);

    let members: Vec<i64> = (200..249).collect();
    let owner = 199;
    let room = group(&env, owner, &members).await;
    let member_rows_before = env.count("conversation_members").await;
    send(&env, text(room, owner, "to everyone")).await;
    assert_eq!(
        env.count("conversation_members").await,
        member_rows_before,
        "a send writes no member row"
    );
    assert_eq!(unread(&env, owner, room).await, 0);
    for &member in &members {
        assert_eq!(unread(&env, member, room).await, 1, "member {member}");
    }
    send(&env, text(room, members[0], "from a member")).await;
    assert_eq!(unread(&env, owner, room).await, 1);
    assert_eq!(unread(&env, members[0], room).await, 1);
    assert_eq!(unread(&env, members[1], room).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_sqlite() {
    unread_counts(Env::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_postgres() {
    let Some(backends) = Backends::real() else {
        return;
    };
    let bus = Arc::new(InProcessBus::new(RetryPolicy::default()));
    unread_counts(Env::start(&backends, bus).await).await;
}

async fn retried_send(env: Env) {
    let chat = single_chat(&env, ALICE, BOB).await;
    let mut request = text(chat, ALICE, "once");
    request.client_msg_id = "client-1".to_owned();

    // The first reply is lost: the client never reads it and sends again.
    let lost = env
        .message
        .send_message(env.as_user(ALICE, request.clone()));
    drop(lost.await);
    let first = send(&env, request.clone()).await;
    let again = send(&env, request.clone()).await;
    assert_eq!(first, again);
    assert_eq!(env.count("messages").await, 1);

    // Concurrent retries of a fresh id still create one message.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let clients = env.clients();
        let mut request = text(chat, ALICE, "burst");
        request.client_msg_id = "client-2".to_owned();
        tasks.push(tokio::spawn(
            async move { clients.send(request).await.unwrap() },
        ));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "every retry answers with the first id");
    assert_eq!(env.count("messages").await, 2);
    let stats = env
        .message
        .get_conversation_stats(env.as_user(
            ALICE,
            GetConversationStatsRequest {
                user_id: ALICE,
                conversation_ids: vec![chat],
            },
        ))
        .await
        .unwrap();
    assert_eq!(stats.stats[0].last_seq, 2, "a retry takes no seq");
    assert_eq!(stats.stats[0].sent_by_user, 2);

    // The same client id in another conversation is refused.
    let other = single_chat(&env, ALICE, CAROL).await;
    let mut reused = text(other, ALICE, "elsewhere");
    reused.client_msg_id = "client-1".to_owned();
    let result = env.message.send_message(env.as_user(ALICE, reused)).await;
    assert_eq!(code(result), Code::AlreadyExists);
    assert_eq!(env.count("messages").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_send_sqlite() {
    retried_send(Env::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_send_postgres() {
    let Some(backends) = Backends::real() else {
        return;
    };
    let bus = Arc::new(InProcessBus::new(RetryPolicy::default()));
    retried_send(Env::start(&backends, bus).await).await;
}

async fn history_pages(env: Env) {
    let chat = single_chat(&env, ALICE, BOB).await;
    let page = env
        .message
        .get_messages(env.as_user(
            ALICE,
            GetMessagesRequest {
                conversation_id: chat,
                before_id: 0,
                limit: 0,
            },
        ))
        .await
        .unwrap();
    assert!(page.messages.is_empty());
    assert!(!page.has_more);

    let mut ids = Vec::new();
    for n in 1..=150 {
        ids.push(send(&env, text(chat, ALICE, &format!("m{n}"))).await);
    }
    let get = |before_id: i64, limit: i32| {
        env.message.get_messages(env.as_user(
            BOB,
            GetMessagesRequest {
                conversation_id: chat,
                before_id,
                limit,
            },
        ))
    };

    let first = get(0, 0).await.unwrap();
    assert_eq!(first.messages.len(), 50, "limit 0 means 50");
    assert_eq!(first.messages[0].message_id, ids[149]);
    assert_eq!(first.messages[0].seq, 150);
    assert_eq!(first.messages[0].content, "m150");
    assert!(first.has_more);

    let big = get(0, 500).await.unwrap();
    assert_eq!(big.messages.len(), 100, "limits above 100 are cut to 100");
    assert!(big.has_more);

    let tail = get(ids[50], 100).await.unwrap();
    assert_eq!(tail.messages.len(), 50);
    assert_eq!(tail.messages[0].message_id, ids[49]);
    assert!(!tail.has_more, "the page ends at the oldest message");

    let exact = get(ids[100], 100).await.unwrap();
    assert_eq!(exact.messages.len(), 100);
    assert!(!exact.has_more, "exactly 100 older messages leave none");

    // A send after the first page was cached shows up at once.
    let newest = send(&env, text(chat, BOB, "fresh")).await;
    let first = get(0, 10).await.unwrap();
    assert_eq!(first.messages[0].message_id, newest);
    assert_eq!(first.messages[0].seq, 151);
    assert_eq!(first.messages[1].message_id, ids[149]);

    let missing = get(999_999, 10).await;
    assert_eq!(code(missing), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_sqlite() {
    history_pages(Env::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_postgres() {
    let Some(backends) = Backends::real() else {
        return;
    };
    let bus = Arc::new(InProcessBus::new(RetryPolicy::default()));
    history_pages(Env::start(&backends, bus).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_moves_forward_only() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let message_id = send(&env, text(chat, ALICE, "hi")).await;
    let set = |user: i64, status: i32| {
        env.message.update_message_status(
            env.as_user(user, UpdateMessageStatusRequest { message_id, status }),
        )
    };
    let status = || async {
        env.message
            .get_message_detail(env.as_user(BOB, GetMessageDetailRequest { message_id }))
            .await
            .unwrap()
            .status
    };

    assert_eq!(status().await, 0);
    assert_eq!(
        code(set(ALICE, 1).await),
        Code::PermissionDenied,
        "the sender"
    );
    assert_eq!(status().await, 0);
    set(BOB, 2).await.unwrap();
    assert_eq!(status().await, 2);
    assert_eq!(code(set(BOB, 1).await), Code::FailedPrecondition);
    assert_eq!(status().await, 2);
    set(BOB, 2).await.unwrap();

    let page = env
        .message
        .get_messages(env.as_user(
            ALICE,
            GetMessagesRequest {
                conversation_id: chat,
                before_id: 0,
                limit: 10,
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        page.messages[0].status, 2,
        "the hot cache sees the new status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sends_write_nothing() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let cases = [
        (text(chat, ALICE, ""), "content"),
        (text(chat, ALICE, " "), "content"),
        (text(chat, ALICE, " \t\r\n "), "content"),
        (text(chat, ALICE, "\u{3000}\u{a0}"), "content"),
        (text(chat, ALICE, "\u{200b}"), "content"),
        (
            text(chat, ALICE, "\u{200b}\u{200c}\u{200d}\u{2060}\u{feff}"),
            "content",
        ),
        (text(chat, ALICE, " \u{200b}\n\u{feff} "), "content"),
        (text(chat, ALICE, "\u{180e}\u{ad}"), "content"),
        (
            SendMessageRequest {
                content_type: 5,
                ..text(chat, ALICE, "x")
            },
            "content_type",
        ),
        (
            SendMessageRequest {
                extra_data: "{not json".to_owned(),
                ..text(chat, ALICE, "x")
            },
            "extra_data",
        ),
        (text(chat, ALICE, &"x".repeat(10_001)), "content"),
    ];
    for (request, field) in cases {
        let err = env
            .message
            .send_message(env.as_user(ALICE, request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
    }
    let acting_for_bob = env
        .message
        .send_message(env.as_user(ALICE, text(chat, BOB, "forged")))
        .await;
    assert_eq!(code(acting_for_bob), Code::PermissionDenied);
    assert_eq!(env.count("messages").await, 0);
    assert_eq!(env.count("conversation_counters").await, 0);

    let with_json = SendMessageRequest {
        extra_data: r#"{"width":3}"#.to_owned(),
        ..text(chat, ALICE, &"字".repeat(10_000))
    };
    let id = send(&env, with_json).await;
    let detail = env
        .message
        .get_message_detail(env.as_user(BOB, GetMessageDetailRequest { message_id: id }))
        .await
        .unwrap();
    assert_eq!(detail.extra_data, r#"{"width":3}"#);
    assert_eq!(detail.content.chars().count(), 10_000);
    assert_eq!(detail.seq, 1);

    let padded = send(&env, text(chat, ALICE, "  hi  ")).await;
    let detail = env
        .message
        .get_message_detail(env.as_user(BOB, GetMessageDetailRequest { message_id: padded }))
        .await
        .unwrap();
    assert_eq!(detail.content, "  hi  ", "text is stored as sent");
    let joined = send(&env, text(chat, ALICE, "\u{200b}hi\u{200d}")).await;
    let detail = env
        .message
        .get_message_detail(env.as_user(BOB, GetMessageDetailRequest { message_id: joined }))
        .await
        .unwrap();
    assert_eq!(
        detail.content, "\u{200b}hi\u{200d}",
        "visible text keeps its joiners"
    );
    let image = SendMessageRequest {
        content_type: 2,
        ..text(chat, ALICE, " ")
    };
    send(&env, image).await;
    assert_eq!(env.count("messages").await, 4, "only text is checked");
}

/// A JSON object of exactly `bytes` bytes.
fn json_of_size(bytes: usize) -> String {
    let padding = bytes - r#"{"p":""}"#.len();
    format!(r#"{{"p":"{}"}}"#, "x".repeat(padding))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_data_size_is_limited() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let limit = Config::default().message.max_extra_data_bytes as usize;
    assert_eq!(limit, 64 * 1024);

    for bytes in [limit + 1, 8 * 1024 * 1024] {
        let oversized = SendMessageRequest {
            extra_data: json_of_size(bytes),
            ..text(chat, ALICE, "x")
        };
        let err = env
            .message
            .send_message(env.as_user(ALICE, oversized))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bytes} bytes");
        assert!(err.to_string().contains("`extra_data`"), "{err}");
        assert!(err.to_string().contains("at most 65536 bytes"), "{err}");
    }
    assert_eq!(env.count("messages").await, 0);
    assert_eq!(env.count("conversation_counters").await, 0);

    // A full page of messages at both limits still fits in one response.
    let largest = SendMessageRequest {
        extra_data: json_of_size(limit),
        ..text(chat, ALICE, &"\u{1f41d}".repeat(10_000))
    };
    assert_eq!(largest.content.len(), 40_000);
    for _ in 0..101 {
        send(&env, largest.clone()).await;
    }
    let page = env
        .message
        .get_messages(env.as_user(
            BOB,
            GetMessagesRequest {
                conversation_id: chat,
                before_id: 0,
                limit: 100,
            },
        ))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 100);
    assert!(page.has_more);
    assert_eq!(page.messages[0].extra_data.len(), limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_limit_follows_config() {
    let mut config = Config::default();
    config.message.max_content_chars = 20;
    config.message.max_extra_data_bytes = 100;
    let env = Env::sqlite_with(config).await;
    let chat = single_chat(&env, ALICE, BOB).await;

    let long = env
        .message
        .send_message(env.as_user(ALICE, text(chat, ALICE, &"字".repeat(21))))
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.to_string().contains("`content`"), "{long}");
    assert!(
        long.to_string().contains("at most 20 characters (got 21)"),
        "{long}"
    );
    let extra = SendMessageRequest {
        extra_data: json_of_size(101),
        ..text(chat, ALICE, "x")
    };
    let extra = env
        .message
        .send_message(env.as_user(ALICE, extra))
        .await
        .unwrap_err();
    assert_eq!(extra.code(), Code::InvalidArgument);
    assert!(extra.to_string().contains("`extra_data`"), "{extra}");
    assert_eq!(env.count("messages").await, 0);

    send(&env, text(chat, ALICE, &"字".repeat(20))).await;
    let at_limit = SendMessageRequest {
        extra_data: json_of_size(100),
        ..text(chat, ALICE, "x")
    };
    send(&env, at_limit).await;
    assert_eq!(env.count("messages").await, 2);
}

/// Asserts that a call failed with INVALID_ARGUMENT naming `field`.
fn assert_invalid<T: std::fmt::Debug>(
    result: Result<T, beehive_runtime::ServiceError>,
    field: &str,
) {
    let err = match result {
        Ok(value) => panic!("expected INVALID_ARGUMENT naming `{field}`, got {value:?}"),
        Err(err) => err,
    };
    assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err}");
    assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_positive_ids_are_invalid() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let message_id = send(&env, text(chat, ALICE, "first")).await;
    let history = |conversation_id: i64, before_id: i64| {
        env.message.get_messages(env.as_user(
            ALICE,
            GetMessagesRequest {
                conversation_id,
                before_id,
                limit: 10,
            },
        ))
    };

    for id in [-1, -5, i64::MIN] {
        let sent = env
            .message
            .send_message(env.as_user(ALICE, text(id, ALICE, "hi")))
            .await;
        assert_invalid(sent, "conversation_id");
        let sent = env
            .message
            .send_message(env.as_user(ALICE, text(chat, id, "hi")))
            .await;
        assert_invalid(sent, "sender_id");
        assert_invalid(history(id, 0).await, "conversation_id");
        assert_invalid(history(chat, id).await, "before_id");
        let detail = env
            .message
            .get_message_detail(env.as_user(ALICE, GetMessageDetailRequest { message_id: id }))
            .await;
        assert_invalid(detail, "message_id");
        let status = env
            .message
            .update_message_status(env.as_user(
                BOB,
                UpdateMessageStatusRequest {
                    message_id: id,
                    status: 1,
                },
            ))
            .await;
        assert_invalid(status, "message_id");
        let stats = env
            .message
            .get_conversation_stats(env.as_user(
                ALICE,
                GetConversationStatsRequest {
                    user_id: id,
                    conversation_ids: vec![chat],
                },
            ))
            .await;
        assert_invalid(stats, "user_id");
    }
    let zero = env
        .message
        .get_message_detail(env.as_user(ALICE, GetMessageDetailRequest { message_id: 0 }))
        .await;
    assert_invalid(zero, "message_id");
    assert_eq!(env.count("messages").await, 1);
    assert_eq!(
        env.scalar("SELECT MAX(status) AS n FROM messages").await,
        0,
        "no status changed"
    );

    let newest = history(chat, 0).await.unwrap();
    assert_eq!(newest.messages.len(), 1, "before_id 0 starts at the newest");
    assert_eq!(newest.messages[0].message_id, message_id);

    let other = group(&env, ALICE, &[BOB]).await;
    assert_not_found(history(other, message_id).await, "before_id");
    let missing = env
        .message
        .get_message_detail(env.as_user(
            ALICE,
            GetMessageDetailRequest {
                message_id: message_id + 1_000,
            },
        ))
        .await;
    assert_not_found(missing, "message_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn former_friends_cannot_send() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let team = group(&env, ALICE, &[BOB]).await;
    send(&env, text(chat, ALICE, "hello")).await;

    env.friends.unfriend(ALICE, BOB);
    tokio::time::sleep(MEMBER_CACHE_TTL + Duration::from_millis(200)).await;
    for sender in [ALICE, BOB] {
        let refused = env
            .message
            .send_message(env.as_user(sender, text(chat, sender, "still there?")))
            .await;
        assert_eq!(code(refused), Code::FailedPrecondition, "sender {sender}");
    }
    assert_eq!(env.count("messages").await, 1);
    assert_eq!(
        env.scalar("SELECT COALESCE(SUM(sent_count), 0) AS n FROM sender_counters")
            .await,
        1
    );

    let history = env
        .message
        .get_messages(env.as_user(
            BOB,
            GetMessagesRequest {
                conversation_id: chat,
                before_id: 0,
                limit: 10,
            },
        ))
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1, "history stays readable");
    send(&env, text(team, BOB, "groups need no friendship")).await;

    env.friends.befriend(ALICE, BOB);
    tokio::time::sleep(MEMBER_CACHE_TTL + Duration::from_millis(200)).await;
    send(&env, text(chat, BOB, "friends again")).await;
    assert_eq!(env.count("messages").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_members_are_refused() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let message_id = send(&env, text(chat, ALICE, "private")).await;
    let messages_before = env.count("messages").await;

    let denied = env
        .message
        .send_message(env.as_user(CAROL, text(chat, CAROL, "let me in")))
        .await;
    assert_eq!(code(denied), Code::PermissionDenied);
    let denied = env
        .message
        .get_messages(env.as_user(
            CAROL,
            GetMessagesRequest {
                conversation_id: chat,
                before_id: 0,
                limit: 10,
            },
        ))
        .await;
    assert_eq!(code(denied), Code::PermissionDenied);
    let denied = env
        .message
        .get_message_detail(env.as_user(CAROL, GetMessageDetailRequest { message_id }))
        .await;
    assert_eq!(code(denied), Code::PermissionDenied);
    let denied = env
        .message
        .update_message_status(env.as_user(
            CAROL,
            UpdateMessageStatusRequest {
                message_id,
                status: 2,
            },
        ))
        .await;
    assert_eq!(code(denied), Code::PermissionDenied);
    let denied = env
        .message
        .get_conversation_stats(env.as_user(
            CAROL,
            GetConversationStatsRequest {
                user_id: CAROL,
                conversation_ids: vec![chat],
            },
        ))
        .await;
    assert_eq!(code(denied), Code::PermissionDenied);

    assert_eq!(env.count("messages").await, messages_before);
    assert_eq!(
        env.scalar("SELECT MAX(status) AS n FROM messages").await,
        0,
        "no status changed"
    );
    assert_eq!(
        env.scalar("SELECT COALESCE(SUM(sent_count), 0) AS n FROM sender_counters")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_conversation_is_not_found() {
    let env = Env::sqlite().await;
    let chat = single_chat(&env, ALICE, BOB).await;
    let missing = chat + 1_000;

    let sent = env
        .message
        .send_message(env.as_user(ALICE, text(missing, ALICE, "anyone there?")))
        .await;
    assert_not_found(sent, "conversation_id");
    let history = env
        .message
        .get_messages(env.as_user(
            ALICE,
            GetMessagesRequest {
                conversation_id: missing,
                before_id: 0,
                limit: 10,
            },
        ))
        .await;
    assert_not_found(history, "conversation_id");
    let stats = env
        .message
        .get_conversation_stats(env.as_user(
            ALICE,
            GetConversationStatsRequest {
                user_id: ALICE,
                conversation_ids: vec![chat, missing],
            },
        ))
        .await;
    assert_not_found(stats, "conversation_ids");

    let outsider = env
        .message
        .send_message(env.as_user(CAROL, text(chat, CAROL, "let me in")))
        .await;
    assert_eq!(
        code(outsider),
        Code::PermissionDenied,
        "existing conversation"
    );
    assert_eq!(env.count("messages").await, 0);
    assert_eq!(env.count("conversation_counters").await, 0);
    assert_eq!(env.count("sender_counters").await, 0);

    send(&env, text(chat, ALICE, "still works")).await;
    assert_eq!(env.count("messages").await, 1);
}
