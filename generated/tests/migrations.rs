//! The generated migrations and entities against SQLite, PostgreSQL and MariaDB.
//!
//! PostgreSQL and MariaDB run when `BEEHIVE_TEST_POSTGRES_URL` and `BEEHIVE_TEST_MYSQL_URL` are
//! set; each test creates and drops its own database.

use beehive_generated::entity::{
    conversation_counters, conversations, email_verification_codes, friend_requests, messages,
    users,
};
use beehive_generated::migration::{
    ChatMigrator, FileMigrator, FriendMigrator, MessageMigrator, Migrator, UserMigrator,
};
use beehive_runtime::db::{self, Database, PoolOptions};
use beehive_runtime::testing::{MYSQL_URL_VAR, POSTGRES_URL_VAR, backend_url};
use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder};
use sea_orm_migration::SchemaManager;

const TABLES: &[&str] = &[
    "users",
    "email_verification_codes",
    "friends",
    "friend_requests",
    "friend_outbox",
    "conversations",
    "conversation_members",
    "messages",
    "conversation_counters",
    "sender_counters",
    "message_outbox",
    "files",
    "file_refs",
    "multipart_uploads",
    "multipart_parts",
];

/// A fresh database that is dropped (or whose directory is deleted) at the end of the test.
struct TestDb {
    db: Database,
    server: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}/nested/beehive.db?mode=rwc",
            dir.path().display()
        );
        let db = db::connect(&url, &PoolOptions::default()).await.unwrap();
        Self {
            db,
            server: None,
            _dir: Some(dir),
        }
    }

    async fn server(var: &str) -> Option<Self> {
        let server_url = backend_url(var)?;
        let name = format!("beehive_mig_{}", uuid::Uuid::new_v4().simple());
        let url = db::create_database(&server_url, &name).await.unwrap();
        let db = db::connect(&url, &PoolOptions::default()).await.unwrap();
        assert_eq!(db.name, name);
        Some(Self {
            db,
            server: Some((server_url, name)),
            _dir: None,
        })
    }

    async fn drop(self) {
        self.db.connection.close().await.unwrap();
        if let Some((server_url, name)) = self.server {
            db::drop_database(&server_url, &name).await.unwrap();
        }
    }
}

#[tokio::test]
async fn migrations_on_sqlite() {
    let test = TestDb::sqlite().await;
    assert_eq!(test.db.name, "beehive");
    check_schema(&test.db).await;
    test.drop().await;
}

#[tokio::test]
async fn migrations_on_postgres() {
    let Some(test) = TestDb::server(POSTGRES_URL_VAR).await else {
        return;
    };
    check_schema(&test.db).await;
    test.drop().await;
}

#[tokio::test]
async fn migrations_on_mysql() {
    let Some(test) = TestDb::server(MYSQL_URL_VAR).await else {
        return;
    };
    check_schema(&test.db).await;
    test.drop().await;
}

async fn check_schema(db: &Database) {
    // Every migrator may run against one database, in any order and more than once.
    db.migrate::<UserMigrator>().await.unwrap();
    db.migrate::<Migrator>().await.unwrap();
    db.migrate::<FriendMigrator>().await.unwrap();
    db.migrate::<ChatMigrator>().await.unwrap();
    db.migrate::<MessageMigrator>().await.unwrap();
    db.migrate::<FileMigrator>().await.unwrap();
    db.migrate::<Migrator>().await.unwrap();

    let manager = SchemaManager::new(&db.connection);
    for table in TABLES {
        assert!(
            manager.has_table(*table).await.unwrap(),
            "table {table} is missing"
        );
    }
    let index = "idx_email_verification_codes_email_purpose_created_at";
    assert!(
        manager
            .has_index("email_verification_codes", index)
            .await
            .unwrap()
    );

    check_defaults(db).await;
    check_unique_keys(db).await;
    check_json_and_text(db).await;
    check_time_order(db).await;
}

async fn check_defaults(db: &Database) {
    let conn = &db.connection;
    let before = Utc::now() - Duration::seconds(5);
    let user = users::ActiveModel {
        username: Set("alice".to_owned()),
        email: Set("alice@example.com".to_owned()),
        password_hash: Set("hash".to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    assert_eq!(user.id, 1);
    assert_eq!(user.nickname, "");
    assert_eq!(user.status, 1);
    assert!(!user.email_verified);
    assert_eq!(user.avatar_url, None);
    assert_eq!(user.last_login_at, None);
    let after = Utc::now() + Duration::seconds(5);
    assert!(
        user.created_at > before && user.created_at < after,
        "created_at {}",
        user.created_at
    );

    let conversation = conversations::ActiveModel {
        r#type: Set(2),
        owner_id: Set(user.id),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    assert_eq!(conversation.r#type, 2);
    assert_eq!(conversation.name, "");
    assert_eq!(conversation.single_key, None);

    let counter = conversation_counters::ActiveModel {
        conversation_id: Set(42),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    assert_eq!(counter.conversation_id, 42);
    assert_eq!(counter.last_seq, 0);
    assert_eq!(counter.last_message_at, None);
}

async fn check_unique_keys(db: &Database) {
    let conn = &db.connection;
    let duplicate = users::ActiveModel {
        username: Set("alice".to_owned()),
        email: Set("other@example.com".to_owned()),
        password_hash: Set("hash".to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await;
    assert!(duplicate.is_err(), "a second `alice` was inserted");
    assert_eq!(users::Entity::find().all(conn).await.unwrap().len(), 1);

    // Usernames compare byte by byte on every database, so case differs.
    users::ActiveModel {
        username: Set("Alice".to_owned()),
        email: Set("Alice@example.com".to_owned()),
        password_hash: Set("hash".to_owned()),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();

    // A unique key on a nullable column allows any number of NULLs but one of each value.
    let request = |pending: Option<&str>| friend_requests::ActiveModel {
        from_user_id: Set(1),
        to_user_id: Set(2),
        pending_key: Set(pending.map(str::to_owned)),
        ..Default::default()
    };
    request(None).insert(conn).await.unwrap();
    request(None).insert(conn).await.unwrap();
    request(Some("1:2")).insert(conn).await.unwrap();
    assert!(
        request(Some("1:2")).insert(conn).await.is_err(),
        "a second pending 1:2 was inserted"
    );
    assert_eq!(
        friend_requests::Entity::find()
            .all(conn)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn check_json_and_text(db: &Database) {
    let conn = &db.connection;
    let extra = serde_json::json!({"width": 640, "names": ["可能", "check"]});
    let content = "还有可能是定期检修 ".repeat(500);
    let message = messages::ActiveModel {
        conversation_id: Set(1),
        sender_id: Set(1),
        seq: Set(1),
        content_type: Set(1),
        content: Set(content.clone()),
        extra_data: Set(Some(extra.clone())),
        client_msg_id: Set(Some("c-1".to_owned())),
        ..Default::default()
    }
    .insert(conn)
    .await
    .unwrap();
    let read = messages::Entity::find_by_id(message.id)
        .one(conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.extra_data, Some(extra));
    assert_eq!(read.content, content);
    assert_eq!(read.status, 0);
}

async fn check_time_order(db: &Database) {
    let conn = &db.connection;
    let code = |created_at: Option<chrono::DateTime<Utc>>| {
        let mut row = email_verification_codes::ActiveModel {
            email: Set("a@example.com".to_owned()),
            code: Set("123456".to_owned()),
            purpose: Set("register".to_owned()),
            expired_at: Set(Utc::now() + Duration::minutes(5)),
            ..Default::default()
        };
        if let Some(created_at) = created_at {
            row.created_at = Set(created_at);
        }
        row
    };
    let old = code(Some(Utc::now() - Duration::hours(1)))
        .insert(conn)
        .await
        .unwrap();
    let new = code(None).insert(conn).await.unwrap();
    let future = code(Some(Utc::now() + Duration::hours(1)))
        .insert(conn)
        .await
        .unwrap();
    assert!(!new.used);
    assert_eq!(new.attempts, 0);

    let order: Vec<i64> = email_verification_codes::Entity::find()
        .order_by_desc(email_verification_codes::Column::CreatedAt)
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(order, vec![future.id, new.id, old.id]);
}
