//! End-to-end tests of the chat service with the message service, over real gRPC on SQLite.
//! The harness lives with the message service's tests.

#[path = "../../message/tests/support/mod.rs"]
mod support;

use std::collections::HashSet;

use beehive_generated::pb::chat::{
    AddMembersRequest, CheckMemberRequest, CreateConversationRequest, GetConversationDetailRequest,
    GetConversationsRequest, MarkReadRequest, RemoveMembersRequest, UpdateConversationInfoRequest,
    UpdateUnreadCountRequest,
};
use beehive_generated::pb::message::SendMessageRequest;
use sea_orm::ConnectionTrait;
use support::{Env, assert_not_found, code};
use tonic::Code;

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;
const DAVE: i64 = 4;
const MISSING_USER: i64 = 5_000_000;

fn single(owner: i64, members: Vec<i64>) -> CreateConversationRequest {
    CreateConversationRequest {
        r#type: 1,
        owner_id: owner,
        member_ids: members,
        ..CreateConversationRequest::default()
    }
}

fn group(owner: i64, members: Vec<i64>) -> CreateConversationRequest {
    CreateConversationRequest {
        r#type: 2,
        name: "team".to_owned(),
        owner_id: owner,
        member_ids: members,
    }
}

async fn create(env: &Env, request: CreateConversationRequest) -> i64 {
    let owner = request.owner_id;
    env.chat
        .create_conversation(env.as_user(owner, request))
        .await
        .unwrap()
        .conversation_id
}

async fn members(env: &Env, conversation_id: i64, reader: i64) -> Vec<(i64, i32)> {
    let detail = env
        .chat
        .get_conversation_detail(env.as_user(
            reader,
            GetConversationDetailRequest {
                conversation_id,
                user_id: reader,
            },
        ))
        .await
        .unwrap();
    let mut members: Vec<(i64, i32)> = detail.members.iter().map(|m| (m.user_id, m.role)).collect();
    members.sort_unstable();
    members
}

async fn send(env: &Env, conversation_id: i64, sender_id: i64) -> i64 {
    env.clients()
        .send(SendMessageRequest {
            conversation_id,
            sender_id,
            content_type: 1,
            content: "hi".to_owned(),
            ..SendMessageRequest::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_chat_needs_friends() {
    let env = Env::sqlite().await;
    let refused = env
        .chat
        .create_conversation(env.as_user(ALICE, single(ALICE, vec![BOB])))
        .await;
    assert_eq!(code(refused), Code::FailedPrecondition);
    let missing_peer = env
        .chat
        .create_conversation(env.as_user(ALICE, single(ALICE, vec![MISSING_USER])))
        .await;
    assert_not_found(missing_peer, "member_ids");
    assert_eq!(env.count("conversations").await, 0);
    assert_eq!(env.count("conversation_members").await, 0);

    env.friends.befriend(ALICE, BOB);
    let first = create(&env, single(ALICE, vec![BOB, ALICE])).await;
    let again = create(&env, single(ALICE, vec![BOB])).await;
    let reverse = create(&env, single(BOB, vec![ALICE])).await;
    assert_eq!(first, again);
    assert_eq!(first, reverse);
    assert_eq!(members(&env, first, BOB).await, vec![(ALICE, 3), (BOB, 1)]);

    for member_ids in [vec![], vec![ALICE], vec![BOB, CAROL]] {
        let refused = env
            .chat
            .create_conversation(env.as_user(ALICE, single(ALICE, member_ids.clone())))
            .await;
        assert_eq!(code(refused), Code::InvalidArgument, "{member_ids:?}");
    }
    let forged = env
        .chat
        .create_conversation(env.as_user(CAROL, single(ALICE, vec![BOB])))
        .await;
    assert_eq!(code(forged), Code::PermissionDenied);
    assert_eq!(env.count("conversations").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_creation_yields_one() {
    let env = Env::sqlite().await;
    env.friends.befriend(ALICE, BOB);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let chat = env.chat.clone();
        let (owner, peer) = if n % 2 == 0 {
            (ALICE, BOB)
        } else {
            (BOB, ALICE)
        };
        let request = env.as_user(owner, single(owner, vec![peer]));
        tasks.push(tokio::spawn(async move {
            chat.create_conversation(request)
                .await
                .unwrap()
                .conversation_id
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(env.count("conversations").await, 1);
    assert_eq!(env.count("conversation_members").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_creation_rules() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB, CAROL, BOB, ALICE])).await;
    assert_eq!(
        members(&env, id, CAROL).await,
        vec![(ALICE, 3), (BOB, 1), (CAROL, 1)]
    );

    let missing = env
        .chat
        .create_conversation(env.as_user(ALICE, group(ALICE, vec![BOB, MISSING_USER])))
        .await;
    assert_not_found(missing, "member_ids");
    let alone = env
        .chat
        .create_conversation(env.as_user(ALICE, group(ALICE, vec![ALICE])))
        .await;
    assert_eq!(code(alone), Code::InvalidArgument);
    let too_big = env
        .chat
        .create_conversation(env.as_user(ALICE, group(ALICE, (10..510).collect())))
        .await;
    assert_eq!(
        code(too_big),
        Code::InvalidArgument,
        "501 members with the owner"
    );
    let bad_type = env
        .chat
        .create_conversation(env.as_user(
            ALICE,
            CreateConversationRequest {
                r#type: 3,
                ..group(ALICE, vec![BOB])
            },
        ))
        .await;
    assert_eq!(code(bad_type), Code::InvalidArgument);
    assert_eq!(env.count("conversations").await, 1);
    assert_eq!(env.count("conversation_members").await, 3);

    let largest = create(&env, group(ALICE, (10..509).collect())).await;
    assert_eq!(members(&env, largest, ALICE).await.len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_change_by_owner_or_admin() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB])).await;
    let add = |caller: i64, user_ids: Vec<i64>| {
        env.chat.add_members(env.as_user(
            caller,
            AddMembersRequest {
                conversation_id: id,
                user_ids,
            },
        ))
    };
    let remove = |caller: i64, user_ids: Vec<i64>| {
        env.chat.remove_members(env.as_user(
            caller,
            RemoveMembersRequest {
                conversation_id: id,
                user_ids,
            },
        ))
    };

    assert_eq!(code(add(BOB, vec![CAROL]).await), Code::PermissionDenied);
    assert_eq!(code(add(CAROL, vec![CAROL]).await), Code::PermissionDenied);
    assert_eq!(code(add(ALICE, vec![MISSING_USER]).await), Code::NotFound);
    assert_eq!(env.count("conversation_members").await, 2);

    send(&env, id, ALICE).await;
    add(ALICE, vec![CAROL, DAVE, BOB]).await.unwrap();
    assert_eq!(
        members(&env, id, DAVE).await,
        vec![(ALICE, 3), (BOB, 1), (CAROL, 1), (DAVE, 1)]
    );
    let listed = env
        .chat
        .get_conversations(env.as_user(CAROL, GetConversationsRequest { user_id: CAROL }))
        .await
        .unwrap();
    assert_eq!(
        listed.conversations[0].unread_count, 0,
        "history is not unread"
    );
    send(&env, id, BOB).await;
    let listed = env
        .chat
        .get_conversations(env.as_user(CAROL, GetConversationsRequest { user_id: CAROL }))
        .await
        .unwrap();
    assert_eq!(listed.conversations[0].unread_count, 1);

    assert_eq!(code(remove(BOB, vec![CAROL]).await), Code::PermissionDenied);
    assert_eq!(
        code(remove(ALICE, vec![ALICE]).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(remove(ALICE, vec![BOB, ALICE]).await),
        Code::FailedPrecondition
    );
    assert_eq!(env.count("conversation_members").await, 4);
    remove(ALICE, vec![CAROL]).await.unwrap();
    assert_eq!(
        members(&env, id, ALICE).await,
        vec![(ALICE, 3), (BOB, 1), (DAVE, 1)]
    );
    let gone = env
        .chat
        .get_conversation_detail(env.as_user(
            CAROL,
            GetConversationDetailRequest {
                conversation_id: id,
                user_id: CAROL,
            },
        ))
        .await;
    assert_eq!(code(gone), Code::PermissionDenied);

    env.friends.befriend(ALICE, BOB);
    let pair = create(&env, single(ALICE, vec![BOB])).await;
    let on_single = env
        .chat
        .add_members(env.as_user(
            ALICE,
            AddMembersRequest {
                conversation_id: pair,
                user_ids: vec![CAROL],
            },
        ))
        .await;
    assert_eq!(code(on_single), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_all_succeed() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB])).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let chat = env.chat.clone();
        let request = env.as_user(
            ALICE,
            AddMembersRequest {
                conversation_id: id,
                user_ids: vec![7, CAROL],
            },
        );
        tasks.push(tokio::spawn(async move { chat.add_members(request).await }));
    }
    for task in tasks {
        let response = task.await.unwrap();
        assert!(response.is_ok(), "{response:?}");
    }
    assert_eq!(
        members(&env, id, ALICE).await,
        vec![(ALICE, 3), (BOB, 1), (CAROL, 1), (7, 1)]
    );
    assert_eq!(env.count("conversation_members").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_leave_but_owner_cannot() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB, CAROL, DAVE])).await;
    let leave = |caller: i64, conversation_id: i64| {
        env.chat.remove_members(env.as_user(
            caller,
            RemoveMembersRequest {
                conversation_id,
                user_ids: vec![caller, caller],
            },
        ))
    };

    leave(BOB, id).await.unwrap();
    assert_eq!(
        members(&env, id, ALICE).await,
        vec![(ALICE, 3), (CAROL, 1), (DAVE, 1)]
    );
    assert_eq!(code(leave(BOB, id).await), Code::PermissionDenied);
    let sent = env
        .clients()
        .send(SendMessageRequest {
            conversation_id: id,
            sender_id: BOB,
            content_type: 1,
            content: "still here?".to_owned(),
            ..SendMessageRequest::default()
        })
        .await;
    assert_eq!(code(sent), Code::PermissionDenied);

    // No RPC assigns roles yet, so CAROL becomes an admin in the table.
    env.db
        .execute_unprepared(&format!(
            "UPDATE conversation_members SET role = 2 WHERE user_id = {CAROL}"
        ))
        .await
        .unwrap();
    leave(CAROL, id).await.unwrap();
    assert_eq!(members(&env, id, ALICE).await, vec![(ALICE, 3), (DAVE, 1)]);

    assert_eq!(code(leave(ALICE, id).await), Code::FailedPrecondition);
    assert_not_found(leave(ALICE, id + 1_000).await, "conversation_id");
    env.friends.befriend(ALICE, BOB);
    let pair = create(&env, single(ALICE, vec![BOB])).await;
    assert_eq!(code(leave(BOB, pair).await), Code::FailedPrecondition);
    assert_eq!(members(&env, pair, BOB).await, vec![(ALICE, 3), (BOB, 1)]);
    assert_eq!(members(&env, id, DAVE).await, vec![(ALICE, 3), (DAVE, 1)]);

    let mixed = env
        .chat
        .remove_members(env.as_user(
            DAVE,
            RemoveMembersRequest {
                conversation_id: id,
                user_ids: vec![DAVE, ALICE],
            },
        ))
        .await;
    assert_eq!(
        code(mixed),
        Code::PermissionDenied,
        "naming others needs owner or admin rights"
    );
    assert_eq!(env.count("conversation_members").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_by_owner_only() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB])).await;
    let rename = |caller: i64, name: &str| {
        env.chat.update_conversation_info(env.as_user(
            caller,
            UpdateConversationInfoRequest {
                conversation_id: id,
                name: name.to_owned(),
                avatar: String::new(),
            },
        ))
    };
    assert_eq!(code(rename(BOB, "mine").await), Code::PermissionDenied);
    assert_eq!(code(rename(CAROL, "mine").await), Code::PermissionDenied);
    rename(ALICE, "renamed").await.unwrap();
    rename(ALICE, "").await.unwrap();
    let detail = env
        .chat
        .get_conversation_detail(env.as_user(
            BOB,
            GetConversationDetailRequest {
                conversation_id: id,
                user_id: BOB,
            },
        ))
        .await
        .unwrap();
    assert_eq!(detail.name, "renamed");
    assert_eq!(detail.owner_id, ALICE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_avatars_are_checked() {
    let env = Env::sqlite().await;
    for name in [
        "a\0b",
        "line\nbreak",
        "evil\u{202E}gpj.exe",
        "\u{2066}team\u{2069}",
    ] {
        let created = env
            .chat
            .create_conversation(env.as_user(
                ALICE,
                CreateConversationRequest {
                    name: name.to_owned(),
                    ..group(ALICE, vec![BOB])
                },
            ))
            .await;
        assert_invalid(created, "name");
    }
    assert_eq!(env.count("conversations").await, 0);
    assert_eq!(env.count("conversation_members").await, 0);

    let id = create(&env, group(ALICE, vec![BOB])).await;
    let update = |name: &str, avatar: &str| {
        env.chat.update_conversation_info(env.as_user(
            ALICE,
            UpdateConversationInfoRequest {
                conversation_id: id,
                name: name.to_owned(),
                avatar: avatar.to_owned(),
            },
        ))
    };
    for avatar in [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "ftp://example.com/a.png",
        "https://",
        "//example.com/a.png",
    ] {
        assert_invalid(update("", avatar).await, "avatar");
    }
    assert_invalid(update("a\0b", "").await, "name");
    assert_invalid(update("ab\u{202D}c", "").await, "name");
    assert_eq!(
        env.scalar(
            "SELECT COUNT(*) AS n FROM conversations WHERE avatar IS NOT NULL OR name <> 'team'"
        )
        .await,
        0,
        "refused updates change nothing"
    );

    update("\u{200F}צוות team", "https://example.com/a.png")
        .await
        .unwrap();
    let detail = env
        .chat
        .get_conversation_detail(env.as_user(
            BOB,
            GetConversationDetailRequest {
                conversation_id: id,
                user_id: BOB,
            },
        ))
        .await
        .unwrap();
    assert_eq!(detail.name, "\u{200F}צוות team");
    assert_eq!(detail.avatar, "https://example.com/a.png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_member_reports_ended_friendship() {
    let env = Env::sqlite().await;
    env.friends.befriend(ALICE, BOB);
    env.friends.befriend(ALICE, CAROL);
    let pair = create(&env, single(ALICE, vec![BOB])).await;
    let team = create(&env, group(ALICE, vec![BOB])).await;
    let check = |conversation_id: i64, check_friendship: bool| {
        env.chat.check_member(env.as_service(CheckMemberRequest {
            conversation_id,
            user_id: BOB,
            check_friendship,
        }))
    };

    let friends = check(pair, true).await.unwrap();
    assert!(friends.is_member);
    assert!(!friends.not_friends);

    env.friends.unfriend(ALICE, BOB);
    let ended = check(pair, true).await.unwrap();
    assert!(ended.is_member, "membership stays");
    assert_eq!(ended.role, 1);
    assert!(ended.not_friends);
    let unasked = check(pair, false).await.unwrap();
    assert!(unasked.is_member);
    assert!(!unasked.not_friends, "reported only on request");
    let in_group = check(team, true).await.unwrap();
    assert!(in_group.is_member);
    assert!(!in_group.not_friends, "groups need no friendship");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_members_are_refused() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB])).await;
    let rows = env.count("conversation_members").await;

    let detail = env
        .chat
        .get_conversation_detail(env.as_user(
            CAROL,
            GetConversationDetailRequest {
                conversation_id: id,
                user_id: CAROL,
            },
        ))
        .await;
    assert_eq!(code(detail), Code::PermissionDenied);
    let read = env
        .chat
        .mark_read(env.as_user(
            CAROL,
            MarkReadRequest {
                conversation_id: id,
                user_id: CAROL,
            },
        ))
        .await;
    assert_eq!(code(read), Code::PermissionDenied);
    let add = env
        .chat
        .add_members(env.as_user(
            CAROL,
            AddMembersRequest {
                conversation_id: id,
                user_ids: vec![CAROL],
            },
        ))
        .await;
    assert_eq!(code(add), Code::PermissionDenied);
    let remove = env
        .chat
        .remove_members(env.as_user(
            CAROL,
            RemoveMembersRequest {
                conversation_id: id,
                user_ids: vec![BOB],
            },
        ))
        .await;
    assert_eq!(code(remove), Code::PermissionDenied);
    let rename = env
        .chat
        .update_conversation_info(env.as_user(
            CAROL,
            UpdateConversationInfoRequest {
                conversation_id: id,
                name: "taken".to_owned(),
                avatar: String::new(),
            },
        ))
        .await;
    assert_eq!(code(rename), Code::PermissionDenied);
    let probe = env
        .chat
        .check_member(env.as_user(
            CAROL,
            CheckMemberRequest {
                conversation_id: id,
                user_id: BOB,
                check_friendship: false,
            },
        ))
        .await;
    assert_eq!(code(probe), Code::PermissionDenied);
    let unread = env
        .chat
        .update_unread_count(env.as_user(
            CAROL,
            UpdateUnreadCountRequest {
                conversation_id: id,
                user_id: BOB,
                increment: 5,
            },
        ))
        .await;
    assert_eq!(code(unread), Code::PermissionDenied);

    let own = env
        .chat
        .check_member(env.as_user(
            CAROL,
            CheckMemberRequest {
                conversation_id: id,
                user_id: CAROL,
                check_friendship: false,
            },
        ))
        .await
        .unwrap();
    assert!(!own.is_member);
    assert!(!own.conversation_missing);
    assert_eq!(env.count("conversation_members").await, rows);
    assert_eq!(
        env.scalar("SELECT COUNT(*) AS n FROM conversations WHERE name = 'taken'")
            .await,
        0
    );
    assert_eq!(
        env.scalar("SELECT COALESCE(SUM(unread_adjust), 0) AS n FROM conversation_members")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_conversation_is_not_found() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB])).await;
    let missing = id + 1_000;
    let rows = env.count("conversation_members").await;

    let detail = env
        .chat
        .get_conversation_detail(env.as_user(
            ALICE,
            GetConversationDetailRequest {
                conversation_id: missing,
                user_id: ALICE,
            },
        ))
        .await;
    assert_not_found(detail, "conversation_id");
    let read = env
        .chat
        .mark_read(env.as_user(
            ALICE,
            MarkReadRequest {
                conversation_id: missing,
                user_id: ALICE,
            },
        ))
        .await;
    assert_not_found(read, "conversation_id");
    let add = env
        .chat
        .add_members(env.as_user(
            ALICE,
            AddMembersRequest {
                conversation_id: missing,
                user_ids: vec![CAROL],
            },
        ))
        .await;
    assert_not_found(add, "conversation_id");
    let remove = env
        .chat
        .remove_members(env.as_user(
            ALICE,
            RemoveMembersRequest {
                conversation_id: missing,
                user_ids: vec![BOB],
            },
        ))
        .await;
    assert_not_found(remove, "conversation_id");
    let rename = env
        .chat
        .update_conversation_info(env.as_user(
            ALICE,
            UpdateConversationInfoRequest {
                conversation_id: missing,
                name: "ghost".to_owned(),
                avatar: String::new(),
            },
        ))
        .await;
    assert_not_found(rename, "conversation_id");
    let probe = env
        .chat
        .check_member(env.as_user(
            ALICE,
            CheckMemberRequest {
                conversation_id: missing,
                user_id: BOB,
                check_friendship: false,
            },
        ))
        .await;
    assert_not_found(probe, "conversation_id");

    let own = env
        .chat
        .check_member(env.as_user(
            ALICE,
            CheckMemberRequest {
                conversation_id: missing,
                user_id: ALICE,
                check_friendship: false,
            },
        ))
        .await
        .unwrap();
    assert!(!own.is_member);
    assert!(own.conversation_missing);
    let present = env
        .chat
        .check_member(env.as_user(
            ALICE,
            CheckMemberRequest {
                conversation_id: id,
                user_id: ALICE,
                check_friendship: false,
            },
        ))
        .await
        .unwrap();
    assert!(present.is_member);
    assert!(!present.conversation_missing);

    assert_eq!(env.count("conversations").await, 1);
    assert_eq!(env.count("conversation_members").await, rows);
    assert_eq!(
        env.scalar("SELECT COUNT(*) AS n FROM conversations WHERE name = 'ghost'")
            .await,
        0
    );
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
    let id = create(&env, group(ALICE, vec![BOB])).await;
    let rows = env.count("conversation_members").await;

    for bad in [-1, i64::MIN] {
        let detail = env
            .chat
            .get_conversation_detail(env.as_user(
                ALICE,
                GetConversationDetailRequest {
                    conversation_id: bad,
                    user_id: ALICE,
                },
            ))
            .await;
        assert_invalid(detail, "conversation_id");
        let listed = env
            .chat
            .get_conversations(env.as_user(ALICE, GetConversationsRequest { user_id: bad }))
            .await;
        assert_invalid(listed, "user_id");
        let created = env
            .chat
            .create_conversation(env.as_user(ALICE, group(bad, vec![BOB])))
            .await;
        assert_invalid(created, "owner_id");
        let add = env
            .chat
            .add_members(env.as_user(
                ALICE,
                AddMembersRequest {
                    conversation_id: bad,
                    user_ids: vec![CAROL],
                },
            ))
            .await;
        assert_invalid(add, "conversation_id");
        let remove = env
            .chat
            .remove_members(env.as_user(
                ALICE,
                RemoveMembersRequest {
                    conversation_id: bad,
                    user_ids: vec![BOB],
                },
            ))
            .await;
        assert_invalid(remove, "conversation_id");
        let read = env
            .chat
            .mark_read(env.as_user(
                ALICE,
                MarkReadRequest {
                    conversation_id: bad,
                    user_id: ALICE,
                },
            ))
            .await;
        assert_invalid(read, "conversation_id");
        let rename = env
            .chat
            .update_conversation_info(env.as_user(
                ALICE,
                UpdateConversationInfoRequest {
                    conversation_id: bad,
                    name: "ghost".to_owned(),
                    avatar: String::new(),
                },
            ))
            .await;
        assert_invalid(rename, "conversation_id");
        let probe = env
            .chat
            .check_member(env.as_user(
                ALICE,
                CheckMemberRequest {
                    conversation_id: id,
                    user_id: bad,
                    check_friendship: false,
                },
            ))
            .await;
        assert_invalid(probe, "user_id");
        let unread = env
            .chat
            .update_unread_count(env.as_service(UpdateUnreadCountRequest {
                conversation_id: bad,
                user_id: BOB,
                increment: 1,
            }))
            .await;
        assert_invalid(unread, "conversation_id");
    }
    assert_eq!(env.count("conversations").await, 1);
    assert_eq!(env.count("conversation_members").await, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_adjustments_never_go_negative() {
    let env = Env::sqlite().await;
    let id = create(&env, group(ALICE, vec![BOB])).await;
    send(&env, id, ALICE).await;
    send(&env, id, ALICE).await;
    let unread = || async {
        env.chat
            .get_conversations(env.as_user(BOB, GetConversationsRequest { user_id: BOB }))
            .await
            .unwrap()
            .conversations[0]
            .unread_count
    };
    let adjust = |increment: i32| {
        env.chat
            .update_unread_count(env.as_service(UpdateUnreadCountRequest {
                conversation_id: id,
                user_id: BOB,
                increment,
            }))
    };
    assert_eq!(unread().await, 2);
    adjust(3).await.unwrap();
    assert_eq!(unread().await, 5);
    adjust(-10).await.unwrap();
    assert_eq!(unread().await, 0);
    send(&env, id, ALICE).await;
    assert_eq!(
        unread().await,
        1,
        "a floor at 0 does not swallow later messages"
    );

    let as_user = env
        .chat
        .update_unread_count(env.as_user(
            BOB,
            UpdateUnreadCountRequest {
                conversation_id: id,
                user_id: BOB,
                increment: 1,
            },
        ))
        .await;
    assert_eq!(code(as_user), Code::PermissionDenied);
    let not_member = env
        .chat
        .update_unread_count(env.as_service(UpdateUnreadCountRequest {
            conversation_id: id,
            user_id: CAROL,
            increment: 1,
        }))
        .await;
    assert_eq!(code(not_member), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_list_newest_activity_first() {
    let env = Env::sqlite().await;
    let first = create(&env, group(ALICE, vec![BOB])).await;
    let second = create(&env, group(ALICE, vec![CAROL])).await;
    let third = create(&env, group(ALICE, vec![DAVE])).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    send(&env, first, BOB).await;

    let listed = env
        .chat
        .get_conversations(env.as_user(ALICE, GetConversationsRequest { user_id: ALICE }))
        .await
        .unwrap();
    let order: Vec<i64> = listed
        .conversations
        .iter()
        .map(|c| c.conversation_id)
        .collect();
    assert_eq!(order, vec![first, third, second]);
    assert_eq!(listed.conversations[0].unread_count, 1);
    assert!(listed.conversations[0].last_message_at > 0);
    assert_eq!(listed.conversations[1].last_message_at, 0);

    let forged = env
        .chat
        .get_conversations(env.as_user(BOB, GetConversationsRequest { user_id: ALICE }))
        .await;
    assert_eq!(code(forged), Code::PermissionDenied);
}
