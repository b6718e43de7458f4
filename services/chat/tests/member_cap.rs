//! The group size limit under concurrent `AddMembers` calls, on SQLite, PostgreSQL and MariaDB.
//!
//! PostgreSQL and MariaDB run when `BEEHIVE_TEST_POSTGRES_URL` and `BEEHIVE_TEST_MYSQL_URL` are
//! set, and each test creates and drops its own database. The service runs in-process with
//! stand-ins for the user, friend and message services. The message stand-in returns after a
//! short delay, as a remote call would, so the calls overlap.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use beehive_chat::{ChatDeps, ChatService, Friends, MessageStats, Users};
use beehive_generated::chat::rpc;
use beehive_generated::entity::conversation_members;
use beehive_generated::migration::ChatMigrator;
use beehive_generated::pb::chat::{AddMembersRequest, CreateConversationRequest};
use beehive_generated::pb::message::ConversationStats;
use beehive_runtime::config::ChatConfig;
use beehive_runtime::context::Caller;
use beehive_runtime::db::{self, Database, PoolOptions};
use beehive_runtime::testing::{MYSQL_URL_VAR, POSTGRES_URL_VAR, backend_url};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

const OWNER: i64 = 1;
const FIRST_MEMBER: i64 = 2;
const MAX_MEMBERS: u32 = 5;
const CALLS: i64 = 12;

struct AllUsers;

#[async_trait]
impl Users for AllUsers {
    async fn existing(
        &self,
        _ctx: &CallContext,
        user_ids: &[i64],
    ) -> Result<HashSet<i64>, ServiceError> {
        Ok(user_ids.iter().copied().collect())
    }
}

struct NoFriends;

#[async_trait]
impl Friends for NoFriends {
    async fn are_friends(
        &self,
        _ctx: &CallContext,
        _user_id: i64,
        _friend_id: i64,
    ) -> Result<bool, ServiceError> {
        Ok(false)
    }
}

/// Returns empty counters (no messages) after a delay.
struct SlowEmptyStats;

#[async_trait]
impl MessageStats for SlowEmptyStats {
    async fn stats(
        &self,
        _ctx: &CallContext,
        _user_id: i64,
        conversation_ids: &[i64],
    ) -> Result<Vec<ConversationStats>, ServiceError> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(conversation_ids
            .iter()
            .map(|&conversation_id| ConversationStats {
                conversation_id,
                ..ConversationStats::default()
            })
            .collect())
    }
}

fn as_user(user_id: i64) -> CallContext {
    CallContext::internal(Caller::User(user_id), Duration::from_secs(30))
}

async fn concurrent_adds_stop_at_the_limit(database: &Database) {
    database.migrate::<ChatMigrator>().await.unwrap();
    let db = database.connection.clone();
    let service = Arc::new(ChatService::new(ChatDeps {
        db: db.clone(),
        config: ChatConfig {
            max_group_members: MAX_MEMBERS,
        },
        friends: Arc::new(NoFriends),
        users: Arc::new(AllUsers),
        stats: Arc::new(SlowEmptyStats),
    }));
    let conversation_id = Handle::<rpc::CreateConversation>::handle(
        &*service,
        as_user(OWNER),
        CreateConversationRequest {
            r#type: 2,
            name: "capped".to_owned(),
            owner_id: OWNER,
            member_ids: vec![FIRST_MEMBER],
        },
    )
    .await
    .unwrap()
    .conversation_id;

    // Twelve calls, each adding one new user, to a group of two with a maximum of five.
    let mut tasks = Vec::new();
    for n in 0..CALLS {
        let service = service.clone();
        let user_id = 100 + n;
        tasks.push(tokio::spawn(async move {
            let result = Handle::<rpc::AddMembers>::handle(
                &*service,
                as_user(OWNER),
                AddMembersRequest {
                    conversation_id,
                    user_ids: vec![user_id],
                },
            )
            .await;
            (user_id, result)
        }));
    }
    let mut added = HashSet::new();
    let mut rejected = 0;
    for task in tasks {
        let (user_id, result) = task.await.unwrap();
        match result {
            Ok(response) => {
                assert!(response.success);
                assert_eq!(response.message, "added 1 members");
                added.insert(user_id);
            }
            Err(err) => {
                assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
                let text = err.to_string();
                assert!(text.contains("`user_ids`"), "{text}");
                assert!(text.contains("holds at most 5"), "{text}");
                rejected += 1;
            }
        }
    }
    assert_eq!(added.len() as u32, MAX_MEMBERS - 2);
    assert_eq!(rejected, CALLS as usize - added.len());

    // Exactly the accepted users joined, and rejected calls left no row behind.
    let rows = conversation_members::Entity::find()
        .filter(conversation_members::Column::ConversationId.eq(conversation_id))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len() as u32, MAX_MEMBERS);
    let mut expected: HashSet<i64> = added.clone();
    expected.extend([OWNER, FIRST_MEMBER]);
    let stored: HashSet<i64> = rows.iter().map(|row| row.user_id).collect();
    assert_eq!(stored, expected);
    assert_eq!(
        conversation_members::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        u64::from(MAX_MEMBERS)
    );

    // A full group rejects a single call adding one more member with the same code.
    let full = Handle::<rpc::AddMembers>::handle(
        &*service,
        as_user(OWNER),
        AddMembersRequest {
            conversation_id,
            user_ids: vec![500],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(full.code(), tonic::Code::InvalidArgument);
    assert!(
        full.to_string()
            .contains("has 5 members and holds at most 5")
    );
    assert_eq!(
        conversation_members::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        u64::from(MAX_MEMBERS)
    );
}

/// Runs the scenario on a fresh database on the server named by `var`; skips when it is unset.
async fn on_server(var: &str) {
    let Some(server_url) = backend_url(var) else {
        return;
    };
    let name = format!("beehive_chatcap_{}", uuid::Uuid::new_v4().simple());
    let url = db::create_database(&server_url, &name).await.unwrap();
    let database = db::connect(&url, &pool()).await.unwrap();
    concurrent_adds_stop_at_the_limit(&database).await;
    database.connection.close().await.unwrap();
    db::drop_database(&server_url, &name).await.unwrap();
}

fn pool() -> PoolOptions {
    PoolOptions {
        max_connections: 16,
        ..PoolOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_stop_at_the_limit_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/beehive.db", dir.path().display());
    let database = db::connect(&url, &pool()).await.unwrap();
    concurrent_adds_stop_at_the_limit(&database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_stop_at_the_limit_on_postgres() {
    on_server(POSTGRES_URL_VAR).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_stop_at_the_limit_on_mysql() {
    on_server(MYSQL_URL_VAR).await;
}
