//! Cache-aside semantics of the generated models, each on the moka and the Redis cache (Redis
//! when `BEEHIVE_TEST_REDIS_URL` is set), over SQLite; updates also over PostgreSQL and MariaDB.
//!
//! Every test has its own database, whose name qualifies every cache key, so tests sharing the
//! Redis server never see each other's keys. Queries are counted with sea-orm's metric callback,
//! which sees every statement sent to the database.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use beehive_generated::entity::users;
use beehive_generated::migration::UserMigrator;
use beehive_generated::model::UsersModel;
use beehive_runtime::cache::{
    Cache, CacheAside, CacheAsideOptions, CacheError, CacheResult, DEFAULT_KEY_PREFIX, MokaCache,
    PLACEHOLDER, RedisCache,
};
use beehive_runtime::db::{self, Database, PoolOptions};
use beehive_runtime::testing::{MYSQL_URL_VAR, POSTGRES_URL_VAR, REDIS_URL_VAR, backend_url};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

const WEEK: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const CONCURRENT_MISSES: usize = 1_000;

#[derive(Clone, Copy)]
enum CacheKind {
    Moka,
    Redis,
}

#[derive(Clone, Copy)]
enum DbKind {
    Sqlite,
    Postgres,
    MySql,
}

/// Statements the database ran, for counting queries and reading the SQL of writes.
#[derive(Clone, Default)]
struct Statements {
    user_selects: Arc<AtomicUsize>,
    sql: Arc<Mutex<Vec<String>>>,
}

impl Statements {
    fn user_selects(&self) -> usize {
        self.user_selects.load(Ordering::SeqCst)
    }

    fn updates_of_users(&self) -> Vec<String> {
        let sql = self.sql.lock().unwrap();
        sql.iter()
            .filter(|s| s.starts_with("UPDATE") && s.contains("users") && s.contains("SET"))
            .cloned()
            .collect()
    }
}

struct Env {
    db: Database,
    cache: Arc<dyn Cache>,
    aside: CacheAside,
    users: UsersModel,
    statements: Statements,
    server: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    async fn drop(self) {
        self.db.connection.close().await.unwrap();
        if let Some((server_url, name)) = self.server {
            db::drop_database(&server_url, &name).await.unwrap();
        }
    }

    async fn insert_user(&self, name: &str) -> users::Model {
        self.users.insert(new_user(name)).await.unwrap()
    }

    fn key(&self, column: &str, value: &str) -> String {
        format!("cache:{}:users:{column}:{value}", self.db.name)
    }

    async fn cached(&self, column: &str, value: &str) -> Option<String> {
        self.cache.get(&self.key(column, value)).await.unwrap()
    }
}

fn new_user(name: &str) -> users::ActiveModel {
    users::ActiveModel {
        username: Set(name.to_owned()),
        email: Set(format!("{name}@example.com")),
        password_hash: Set("hash".to_owned()),
        ..Default::default()
    }
}

async fn cache_of(kind: CacheKind) -> Option<Arc<dyn Cache>> {
    match kind {
        CacheKind::Moka => Some(Arc::new(MokaCache::default())),
        CacheKind::Redis => {
            let url = backend_url(REDIS_URL_VAR)?;
            Some(Arc::new(RedisCache::connect(&url).await.unwrap()))
        }
    }
}

/// Options for tests: the defaults, with a short second delete so tests need not wait for it.
fn test_options() -> CacheAsideOptions {
    CacheAsideOptions {
        second_delete_after: Duration::from_millis(10),
        retry_delay: Duration::from_millis(20),
        ..CacheAsideOptions::default()
    }
}

async fn env(db_kind: DbKind, cache: Arc<dyn Cache>, options: CacheAsideOptions) -> Option<Env> {
    let name = format!("beehive_model_{}", uuid::Uuid::new_v4().simple());
    let (url, server, dir) = match db_kind {
        DbKind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/{name}.db?mode=rwc", dir.path().display());
            (url, None, Some(dir))
        }
        DbKind::Postgres | DbKind::MySql => {
            let var = if matches!(db_kind, DbKind::Postgres) {
                POSTGRES_URL_VAR
            } else {
                MYSQL_URL_VAR
            };
            let server_url = backend_url(var)?;
            let url = db::create_database(&server_url, &name).await.unwrap();
            (url, Some((server_url, name.clone())), None)
        }
    };
    let mut db = db::connect(&url, &PoolOptions::default()).await.unwrap();
    assert_eq!(db.name, name);
    db.migrate::<UserMigrator>().await.unwrap();

    let statements = Statements::default();
    let recorder = statements.clone();
    db.connection.set_metric_callback(move |info| {
        let sql = info.statement.sql.clone();
        if sql.starts_with("SELECT") && sql.contains("users") {
            recorder.user_selects.fetch_add(1, Ordering::SeqCst);
        }
        recorder.sql.lock().unwrap().push(sql);
    });

    let aside = CacheAside::with_options(cache.clone(), db.name.clone(), options);
    let users = UsersModel::new(db.connection.clone(), aside.clone());
    Some(Env {
        db,
        cache,
        aside,
        users,
        statements,
        server,
        _dir: dir,
    })
}

async fn sqlite_env(kind: CacheKind) -> Option<Env> {
    let cache = cache_of(kind).await?;
    env(DbKind::Sqlite, cache, test_options()).await
}

/// Polls `check` every 20 ms for up to 5 s; returns whether it became true.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..250 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

macro_rules! on_both_caches {
    ($($name:ident),* $(,)?) => {
        mod on_moka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::CacheKind::Moka).await;
                }
            )*
        }

        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::CacheKind::Redis).await;
                }
            )*
        }
    };
}

on_both_caches!(
    keys_name_database_table_column_value,
    two_databases_never_share_keys,
    concurrent_misses_run_one_query,
    placeholder_caches_not_found,
    insert_clears_placeholders_of_every_key,
    placeholder_expires,
    cached_rows_have_jittered_ttl,
    update_on_sqlite,
    update_on_postgres,
    update_on_mysql,
    delete_invalidates_every_key,
    invalidation_runs_after_commit,
    decoded_rows_follow_the_cached_text,
);

async fn keys_name_database_table_column_value(kind: CacheKind) {
    let Some(env) = sqlite_env(kind).await else {
        return;
    };
    let alice = env.insert_user("alice").await;
    // Let the second delete of the insert's invalidation pass before filling the cache.
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.users.find_one(alice.id).await.unwrap();
    env.users.find_one_by_username("alice").await.unwrap();
    env.users
        .find_one_by_email("alice@example.com")
        .await
        .unwrap();

    let id_key = format!("cache:{}:users:id:{}", env.db.name, alice.id);
    assert_eq!(env.aside.key("users", "id", &[&alice.id]), id_key);
    for key in [
        id_key,
        env.key("username", "alice"),
        env.key("email", "alice@example.com"),
    ] {
        let json = env
            .cache
            .get(&key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} is not cached"));
        let row: users::Model = serde_json::from_str(&json).unwrap();
        assert_eq!(row, alice);
    }
    env.drop().await;
}

/// A model keeps decoded rows beside the cache, but only returns one while the cache holds its
/// exact text: a row written to the cache by another process, or removed by it, is seen at once.
async fn decoded_rows_follow_the_cached_text(kind: CacheKind) {
    let Some(env) = sqlite_env(kind).await else {
        return;
    };
    let alice = env.insert_user("alice").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.users.find_one(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        env.users.find_one(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(env.statements.user_selects(), 1);

    // Another process caches a newer version of the row.
    let mut renamed = alice.clone();
    renamed.nickname = "Alice Liddell".to_owned();
    let key = env.key("id", &alice.id.to_string());
    let json = serde_json::to_string(&renamed).unwrap();
    env.cache
        .set(&key, &json, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(env.users.find_one(alice.id).await.unwrap(), Some(renamed));

    // Another process drops the key: the database answers again, not the decoded copy.
    env.cache.delete(std::slice::from_ref(&key)).await.unwrap();
    assert_eq!(env.users.find_one(alice.id).await.unwrap(), Some(alice));
    assert_eq!(env.statements.user_selects(), 2);
    env.drop().await;
}

async fn two_databases_never_share_keys(kind: CacheKind) {
    let Some(cache) = cache_of(kind).await else {
        return;
    };
    let one = env(DbKind::Sqlite, cache.clone(), test_options())
        .await
        .unwrap();
    let two = env(DbKind::Sqlite, cache, test_options()).await.unwrap();
    let alice = one.insert_user("alice").await;
    let bob = two.insert_user("bob").await;
    assert_eq!(alice.id, bob.id);

    assert_eq!(
        one.users
            .find_one(alice.id)
            .await
            .unwrap()
            .unwrap()
            .username,
        "alice"
    );
    assert_eq!(
        two.users.find_one(bob.id).await.unwrap().unwrap().username,
        "bob"
    );
    assert_eq!(one.users.find_one_by_username("bob").await.unwrap(), None);
    assert_eq!(
        two.users.find_one_by_username("bob").await.unwrap(),
        Some(bob)
    );
    one.drop().await;
    two.drop().await;
}

async fn concurrent_misses_run_one_query(kind: CacheKind) {
    let Some(env) = sqlite_env(kind).await else {
        return;
    };
    let alice = env.insert_user("alice").await;
    // Let the second delete of the insert's invalidation pass before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let users = Arc::new(env.users.clone());

    let before = env.statements.user_selects();
    let tasks: Vec<_> = (0..CONCURRENT_MISSES)
        .map(|_| {
            let users = users.clone();
            tokio::spawn(async move { users.find_one(alice.id).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().as_ref().map(|u| u.id), Some(alice.id));
    }
    assert_eq!(
        env.statements.user_selects() - before,
        1,
        "queries for {CONCURRENT_MISSES} concurrent misses of a row"
    );

    let before = env.statements.user_selects();
    let tasks: Vec<_> = (0..CONCURRENT_MISSES)
        .map(|_| {
            let users = users.clone();
            tokio::spawn(async move { users.find_one_by_username("nobody").await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), None);
    }
    assert_eq!(
        env.statements.user_selects() - before,
        1,
        "queries for {CONCURRENT_MISSES} concurrent misses of a missing row"
    );
    env.drop().await;
}

async fn placeholder_caches_not_found(kind: CacheKind) {
    let Some(env) = sqlite_env(kind).await else {
        return;
    };
    let before = env.statements.user_selects();
    assert_eq!(env.users.find_one_by_username("bob").await.unwrap(), None);
    assert_eq!(
        env.cached("username", "bob").await.as_deref(),
        Some(PLACEHOLDER)
    );
    assert_eq!(env.users.find_one_by_username("bob").await.unwrap(), None);
    assert_eq!(env.statements.user_selects() - before, 1);

    assert_eq!(
        CacheAsideOptions::default().placeholder_ttl,
        Duration::from_secs(60)
    );
    if let CacheKind::Redis = kind {
        let ttl = redis_pttl(&env.key("username", "bob")).await;
        assert!(ttl > 55_000 && ttl <= 60_000, "placeholder TTL {ttl} ms");
    }
    env.drop().await;
}

async fn insert_clears_placeholders_of_every_key(kind: CacheKind) {
    let Some(env) = sqlite_env(kind).await else {
        return;
    };
    let expected_id = 1;
    assert_eq!(env.users.find_one(expected_id).await.unwrap(), None);
    assert_eq!(env.users.find_one_by_username("bob").await.unwrap(), None);
    assert_eq!(
        env.users
            .find_one_by_email("bob@example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(env.cached("id", "1").await.as_deref(), Some(PLACEHOLDER));

    let bob = env.insert_user("bob").await;
    assert_eq!(bob.id, expected_id);
    assert_eq!(env.cached("id", "1").await, None);
    assert_eq!(env.cached("username", "bob").await, None);
    assert_eq!(env.cached("email", "bob@example.com").await, None);
    assert_eq!(
        env.users.find_one(bob.id).await.unwrap().as_ref(),
        Some(&bob)
    );
    assert_eq!(
        env.users
            .find_one_by_username("bob")
            .await
            .unwrap()
            .as_ref(),
        Some(&bob)
    );
    assert_eq!(
        env.users
            .find_one_by_email("bob@example.com")
            .await
            .unwrap()
            .as_ref(),
        Some(&bob)
    );
    env.drop().await;
}

async fn placeholder_expires(kind: CacheKind) {
    let Some(cache) = cache_of(kind).await else {
        return;
    };
    let options = CacheAsideOptions {
        placeholder_ttl: Duration::from_millis(300),
        ..test_options()
    };
    let env = env(DbKind::Sqlite, cache, options).await.unwrap();
    assert_eq!(env.users.find_one_by_username("carol").await.unwrap(), None);
    // Inserted behind the model's back, so the placeholder stays until it expires.
    new_user("carol").insert(&env.db.connection).await.unwrap();
    assert_eq!(env.users.find_one_by_username("carol").await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        env.users
            .find_one_by_username("carol")
            .await
            .unwrap()
            .unwrap()
            .username,
        "carol"
    );
    env.drop().await;
}

async fn cached_rows_have_jittered_ttl(kind: CacheKind) {
    let Some(cache) = cache_of(kind).await else {
        return;
    };
    let aside = CacheAside::new(cache.clone(), "jitter");
    let samples: Vec<Duration> = (0..2_000).map(|_| aside.jittered_ttl()).collect();
    let min = samples.iter().min().unwrap();
    let max = samples.iter().max().unwrap();
    assert!(*min >= WEEK.mul_f64(0.95), "shortest TTL {min:?}");
    assert!(*max <= WEEK.mul_f64(1.05), "longest TTL {max:?}");
    assert!(
        *max - *min > WEEK.mul_f64(0.05),
        "TTLs spread over only {:?}",
        *max - *min
    );

    match kind {
        CacheKind::Redis => {
            let env = env(DbKind::Sqlite, cache, test_options()).await.unwrap();
            let alice = env.insert_user("alice").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            env.users.find_one(alice.id).await.unwrap();
            let ttl = redis_pttl(&env.key("id", &alice.id.to_string())).await;
            let week_ms = WEEK.as_millis() as i64;
            assert!(
                ttl >= week_ms * 95 / 100 - 5_000 && ttl <= week_ms * 105 / 100,
                "row TTL {ttl} ms"
            );
            env.drop().await;
        }
        CacheKind::Moka => {
            let options = CacheAsideOptions {
                ttl: Duration::from_millis(400),
                ..test_options()
            };
            let env = env(DbKind::Sqlite, cache, options).await.unwrap();
            let alice = env.insert_user("alice").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            env.users.find_one(alice.id).await.unwrap();
            let key_value = alice.id.to_string();
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                env.cached("id", &key_value).await.is_some(),
                "row expired before 95 % of its TTL"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(
                env.cached("id", &key_value).await,
                None,
                "row outlived 105 % of its TTL"
            );
            env.drop().await;
        }
    }
}

/// Reads the TTL of a cache key straight from Redis, where `RedisCache` stores it under its
/// default key prefix.
async fn redis_pttl(key: &str) -> i64 {
    let url = backend_url(REDIS_URL_VAR).unwrap();
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PTTL")
        .arg(format!("{DEFAULT_KEY_PREFIX}{key}"))
        .query_async(&mut connection)
        .await
        .unwrap()
}

async fn update_on_sqlite(kind: CacheKind) {
    check_update(DbKind::Sqlite, kind).await;
}

async fn update_on_postgres(kind: CacheKind) {
    check_update(DbKind::Postgres, kind).await;
}

async fn update_on_mysql(kind: CacheKind) {
    check_update(DbKind::MySql, kind).await;
}

/// Update writes only the changed columns and invalidates the old and the new values of every
/// cached key.
async fn check_update(db_kind: DbKind, kind: CacheKind) {
    let Some(cache) = cache_of(kind).await else {
        return;
    };
    let Some(env) = env(db_kind, cache, test_options()).await else {
        return;
    };
    let alice = env.insert_user("alice").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.users.find_one(alice.id).await.unwrap().as_ref(),
        Some(&alice)
    );
    assert!(
        env.users
            .find_one_by_username("alice")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        env.users
            .find_one_by_email("alice@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        env.users.find_one_by_username("alice2").await.unwrap(),
        None
    );
    assert_eq!(
        env.cached("username", "alice2").await.as_deref(),
        Some(PLACEHOLDER)
    );

    // Another writer changes the nickname after `alice` was read.
    users::Entity::update_many()
        .col_expr(users::Column::Nickname, Expr::val("other writer"))
        .filter(users::Column::Id.eq(alice.id))
        .exec(&env.db.connection)
        .await
        .unwrap();

    let mut new = alice.clone();
    new.username = "alice2".to_owned();
    new.email = "alice2@example.com".to_owned();
    let updated = env.users.update(&alice, new).await.unwrap();
    assert_eq!(updated.username, "alice2");
    assert_eq!(updated.email, "alice2@example.com");
    assert_eq!(
        updated.nickname, "other writer",
        "update overwrote a column it did not change"
    );

    let writes = env.statements.updates_of_users();
    let write = writes
        .iter()
        .find(|sql| sql.contains("username"))
        .unwrap_or_else(|| panic!("no UPDATE of username in {writes:?}"));
    assert!(write.contains("email"), "{write}");
    assert!(
        !write.contains("nickname"),
        "update wrote an unchanged column: {write}"
    );
    assert!(
        !write.contains("password_hash"),
        "update wrote an unchanged column: {write}"
    );

    assert_eq!(env.users.find_one_by_username("alice").await.unwrap(), None);
    assert_eq!(
        env.users
            .find_one_by_email("alice@example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        env.users
            .find_one_by_username("alice2")
            .await
            .unwrap()
            .as_ref(),
        Some(&updated)
    );
    assert_eq!(
        env.users
            .find_one_by_email("alice2@example.com")
            .await
            .unwrap()
            .as_ref(),
        Some(&updated)
    );
    assert_eq!(
        env.users.find_one(alice.id).await.unwrap().as_ref(),
        Some(&updated)
    );

    let unchanged = env.users.update(&updated, updated.clone()).await.unwrap();
    assert_eq!(unchanged, updated);
    env.drop().await;
}

async fn delete_invalidates_every_key(kind: CacheKind) {
    let Some(env) = sqlite_env(kind).await else {
        return;
    };
    let alice = env.insert_user("alice").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(env.users.find_one(alice.id).await.unwrap().is_some());
    assert!(
        env.users
            .find_one_by_username("alice")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        env.users
            .find_one_by_email("alice@example.com")
            .await
            .unwrap()
            .is_some()
    );

    assert!(env.users.delete(&alice).await.unwrap());
    assert_eq!(env.users.find_one(alice.id).await.unwrap(), None);
    assert_eq!(env.users.find_one_by_username("alice").await.unwrap(), None);
    assert_eq!(
        env.users
            .find_one_by_email("alice@example.com")
            .await
            .unwrap(),
        None
    );
    assert!(!env.users.delete(&alice).await.unwrap());
    env.drop().await;
}

/// A cache that fails the first `failures` deletes and, on each delete, records the username that
/// a separate reader sees in the database at that moment.
struct ObservedCache {
    inner: Arc<dyn Cache>,
    failures: AtomicUsize,
    reader: Mutex<Option<(sea_orm::DatabaseConnection, i64)>>,
    seen_by_delete: Mutex<Vec<String>>,
    deletes: AtomicUsize,
}

impl ObservedCache {
    fn new(inner: Arc<dyn Cache>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failures: AtomicUsize::new(0),
            reader: Mutex::new(None),
            seen_by_delete: Mutex::new(Vec::new()),
            deletes: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Cache for ObservedCache {
    async fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[String]) -> CacheResult<Vec<Option<String>>> {
        self.inner.get_many(keys).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()> {
        self.inner.set(key, value, ttl).await
    }

    async fn delete(&self, keys: &[String]) -> CacheResult<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        let reader = self.reader.lock().unwrap().clone();
        if let Some((connection, id)) = reader {
            let row = users::Entity::find_by_id(id)
                .one(&connection)
                .await
                .unwrap();
            let username = row.map(|r| r.username).unwrap_or_default();
            self.seen_by_delete.lock().unwrap().push(username);
        }
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(CacheError::Backend("injected delete failure".to_owned()));
        }
        self.inner.delete(keys).await
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<bool> {
        self.inner.set_if_absent(key, value, ttl).await
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CacheResult<i64> {
        self.inner.incr(key, delta, ttl).await
    }
}

async fn invalidation_runs_after_commit(kind: CacheKind) {
    let Some(inner) = cache_of(kind).await else {
        return;
    };
    let observed = ObservedCache::new(inner);
    let env = env(DbKind::Sqlite, observed.clone(), test_options())
        .await
        .unwrap();
    let alice = env.insert_user("alice").await;

    // A second pool on the same file reads only what has been committed.
    let path = env
        ._dir
        .as_ref()
        .unwrap()
        .path()
        .join(format!("{}.db", env.db.name));
    let reader = db::connect(
        &format!("sqlite://{}", path.display()),
        &PoolOptions::default(),
    )
    .await
    .unwrap();
    *observed.reader.lock().unwrap() = Some((reader.connection.clone(), alice.id));

    let mut new = alice.clone();
    new.username = "alice2".to_owned();
    env.users.update(&alice, new).await.unwrap();
    let seen = observed.seen_by_delete.lock().unwrap().clone();
    assert_eq!(
        seen.first().map(String::as_str),
        Some("alice2"),
        "invalidation ran before the commit"
    );
    env.drop().await;
}

/// Log lines written while a test runs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn failed_invalidation_is_retried(kind: CacheKind) {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runs on one thread, so the background retries log to this subscriber too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let Some(inner) = cache_of(kind).await else {
        return;
    };
    let observed = ObservedCache::new(inner);
    let env = env(DbKind::Sqlite, observed.clone(), test_options())
        .await
        .unwrap();
    let alice = env.insert_user("alice").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        env.users
            .find_one_by_username("alice")
            .await
            .unwrap()
            .is_some()
    );

    observed.failures.store(3, Ordering::SeqCst);
    let mut new = alice.clone();
    new.username = "alice2".to_owned();
    let updated = env
        .users
        .update(&alice, new)
        .await
        .expect("a failed invalidation failed the write");
    assert_eq!(updated.username, "alice2");

    let key = env.key("username", "alice");
    let cache = observed.clone();
    assert!(
        eventually(|| {
            let cache = cache.clone();
            let key = key.clone();
            async move { cache.inner.get(&key).await.unwrap().is_none() }
        })
        .await,
        "the stale entry was never invalidated"
    );
    assert!(observed.deletes.load(Ordering::SeqCst) >= 4);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("cache invalidation failed"), "{text}");
    assert!(text.contains("attempt=1"), "{text}");
    assert!(text.contains("attempt=3"), "{text}");
    assert!(text.contains("injected delete failure"), "{text}");
    assert!(text.contains(&key), "{text}");
    env.drop().await;
}

#[tokio::test]
async fn failed_invalidation_is_retried_on_moka() {
    failed_invalidation_is_retried(CacheKind::Moka).await;
}

#[tokio::test]
async fn failed_invalidation_is_retried_on_redis() {
    failed_invalidation_is_retried(CacheKind::Redis).await;
}
