//! Test stack: the user and friend services over real gRPC on 127.0.0.1, on SQLite with the
//! in-process cache, or on PostgreSQL (a fresh database per test) with Redis (a unique key
//! prefix per test). The friend service's tests include this file by path.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use beehive_friend::{FriendDeps, FriendService, FriendTasks};
use beehive_generated::MessageLimits;
use beehive_generated::friend::FriendClient;
use beehive_generated::migration::{FriendMigrator, UserMigrator};
use beehive_generated::pb::user::{RegisterRequest, SendCodeRequest};
use beehive_generated::user::UserClient;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::bus::{Bus, InProcessBus, RetryPolicy};
use beehive_runtime::cache::{Cache, CacheResult, MokaCache, RedisCache};
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, Database, PoolOptions};
use beehive_runtime::mail::{FileMailer, latest_code, parse_mailbox};
use beehive_runtime::server::{RunningServer, ServerBuilder};
use beehive_runtime::testing::{POSTGRES_URL_VAR, REDIS_URL_VAR, backend_url};
use beehive_user::{UserDeps, UserService};
use sea_orm::{ConnectionTrait, Statement};

/// bcrypt cost of the tests: the minimum, because unoptimised test builds hash slowly.
pub const TEST_BCRYPT_COST: u32 = 4;
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Prefixes every key, so tests sharing one Redis server never see each other's keys.
pub struct PrefixedCache {
    prefix: String,
    inner: Arc<dyn Cache>,
}

impl PrefixedCache {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for PrefixedCache {
    async fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.inner.get(&self.key(key)).await
    }

    async fn get_many(&self, keys: &[String]) -> CacheResult<Vec<Option<String>>> {
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        self.inner.get_many(&keys).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()> {
        self.inner.set(&self.key(key), value, ttl).await
    }

    async fn delete(&self, keys: &[String]) -> CacheResult<()> {
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        self.inner.delete(&keys).await
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<bool> {
        self.inner.set_if_absent(&self.key(key), value, ttl).await
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CacheResult<i64> {
        self.inner.incr(&self.key(key), delta, ttl).await
    }
}

/// Builds a test configuration: token mode, a fixed secret, the cheapest bcrypt cost.
pub fn test_config(data_dir: PathBuf) -> Config {
    let mut config = Config {
        data_dir,
        ..Config::default()
    };
    config.auth.jwt_secret = "test-secret-of-at-least-32-bytes!".to_owned();
    config.auth.bcrypt_cost = TEST_BCRYPT_COST;
    config
}

/// The two services, their clients and what the tests inspect.
pub struct Stack {
    pub backend: Backend,
    _dir: tempfile::TempDir,
    pub config: Arc<Config>,
    pub db: Database,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<InProcessBus>,
    pub authenticator: Arc<Authenticator>,
    pub mail_dir: PathBuf,
    pub users: UserClient,
    pub friends: FriendClient,
    servers: Vec<RunningServer>,
    friend_tasks: Option<FriendTasks>,
    /// PostgreSQL database to drop at the end, and the URL of the server's default database.
    pg_cleanup: Option<(String, String)>,
}

impl Stack {
    /// Starts both services on `backend`; `None` (with a line saying so) when the backend's URL
    /// variables are unset outside CI.
    pub async fn start(backend: Backend) -> Option<Stack> {
        Self::start_with(backend, |_| {}).await
    }

    /// Like [`Stack::start`], after `adjust` changed the configuration.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Stack> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path().to_path_buf());
        adjust(&mut config);
        let config = Arc::new(config);
        let unique = uuid::Uuid::new_v4().simple().to_string();

        let (db, cache, pg_cleanup): (Database, Arc<dyn Cache>, _) = match backend {
            Backend::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("beehive.db").display()
                );
                let db = db::connect(&url, &PoolOptions::default())
                    .await
                    .expect("sqlite");
                (db, Arc::new(MokaCache::new(10_000)), None)
            }
            Backend::Postgres => {
                let pg_url = backend_url(POSTGRES_URL_VAR)?;
                let redis_url = backend_url(REDIS_URL_VAR)?;
                let name = format!("bh_uf_{}", &unique[..16]);
                let admin = db::connect(&pg_url, &PoolOptions::default())
                    .await
                    .expect("postgres");
                admin
                    .connection
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                admin.connection.close().await.ok();
                let url = replace_database(&pg_url, &name);
                let db = db::connect(&url, &PoolOptions::default())
                    .await
                    .expect("postgres db");
                let redis = RedisCache::connect(&redis_url).await.expect("redis");
                let cache = Arc::new(PrefixedCache {
                    prefix: format!("test:{unique}:"),
                    inner: Arc::new(redis),
                });
                (db, cache, Some((name, pg_url)))
            }
        };
        db.migrate::<UserMigrator>().await.expect("user migrations");
        db.migrate::<FriendMigrator>()
            .await
            .expect("friend migrations");

        let authenticator = Arc::new(Authenticator::from_config(&config.auth).expect("auth"));
        let mail_dir = dir.path().join("outbox");
        let from = parse_mailbox(&config.mail.from).expect("from address");
        let mailer = Arc::new(FileMailer::open(&mail_dir, from).expect("mailer"));
        let bus = Arc::new(InProcessBus::new(RetryPolicy::default()));
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let limits = MessageLimits::default();

        let user_service = UserService::new(UserDeps {
            config: config.clone(),
            db: db.connection.clone(),
            db_name: db.name.clone(),
            cache: cache.clone(),
            mailer,
            authenticator: authenticator.clone(),
        });
        let user_server = ServerBuilder::new(config.clone(), "user")
            .listen(loopback)
            .authenticator(authenticator.clone())
            .add_service(beehive_generated::user::server(
                Arc::new(user_service),
                limits,
            ))
            .start()
            .await
            .expect("user server");
        let users = UserClient::new(channel(user_server.local_addr()));

        let friend_service = FriendService::new(FriendDeps {
            config: config.clone(),
            db: db.connection.clone(),
            db_name: db.name.clone(),
            cache: cache.clone(),
            users: users.clone(),
        });
        let friend_tasks = friend_service.spawn_background(bus.clone() as Arc<dyn Bus>);
        let friend_server = ServerBuilder::new(config.clone(), "friend")
            .listen(loopback)
            .authenticator(authenticator.clone())
            .add_service(beehive_generated::friend::server(
                Arc::new(friend_service),
                limits,
            ))
            .start()
            .await
            .expect("friend server");
        let friends = FriendClient::new(channel(friend_server.local_addr()));

        Some(Stack {
            backend,
            _dir: dir,
            config,
            db,
            cache,
            bus,
            authenticator,
            mail_dir,
            users,
            friends,
            servers: vec![user_server, friend_server],
            friend_tasks: Some(friend_tasks),
            pg_cleanup,
        })
    }

    /// Stops the servers and tasks and drops the PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(tasks) = self.friend_tasks.take() {
            tasks.stop().await;
        }
        for server in self.servers.drain(..) {
            server.shutdown().await.expect("shutdown");
        }
        self.db.connection.clone().close().await.ok();
        if let Some((name, url)) = self.pg_cleanup.take()
            && let Ok(admin) = db::connect(&url, &PoolOptions::default()).await
        {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            admin.connection.execute_unprepared(&drop).await.ok();
        }
    }

    /// Builds a request carrying `token` as its bearer token.
    pub fn with_token<T>(&self, token: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {token}").parse().expect("header value");
        request.metadata_mut().insert("authorization", value);
        request
    }

    /// Issues a service token.
    pub fn service_token(&self) -> String {
        self.authenticator
            .issue_service_token()
            .expect("service token")
    }

    /// Returns the newest code mailed to `email`.
    pub fn mailed_code(&self, email: &str) -> Option<String> {
        latest_code(&self.mail_dir, email).expect("read outbox")
    }

    /// Number of mails written to the outbox.
    pub fn mail_count(&self) -> usize {
        std::fs::read_dir(&self.mail_dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.file_name().to_string_lossy().ends_with(".eml"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Sends a `register` code to `email` and returns it.
    pub async fn send_code(&self, email: &str) -> String {
        let request = SendCodeRequest {
            email: email.to_owned(),
            purpose: "register".to_owned(),
        };
        self.users
            .send_verification_code(tonic::Request::new(request))
            .await
            .expect("send code");
        self.mailed_code(email).expect("mailed code")
    }

    /// Registers `username` with `<username>@example.com` and [`PASSWORD`]; returns the id and
    /// the token.
    pub async fn register(&self, username: &str) -> (i64, String) {
        let email = format!("{username}@example.com");
        let code = self.send_code(&email).await;
        let request = RegisterRequest {
            username: username.to_owned(),
            email,
            password: PASSWORD.to_owned(),
            code,
        };
        let response = self
            .users
            .register(tonic::Request::new(request))
            .await
            .expect("register");
        (response.user_id, response.token)
    }

    /// Runs `sql`, which must return one integer column `n`, and returns it.
    pub async fn count(&self, sql: &str) -> i64 {
        let backend = self.db.backend();
        let row = self
            .db
            .connection
            .query_one_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("count query")
            .expect("one row");
        row.try_get::<i64>("", "n").expect("column n")
    }

    /// Runs a statement without results.
    pub async fn execute(&self, sql: &str) {
        self.db
            .connection
            .execute_unprepared(sql)
            .await
            .expect("statement");
    }
}

fn channel(address: SocketAddr) -> ServiceChannel {
    ServiceChannel::lazy(&format!("http://{address}")).expect("channel")
}

/// Replaces the database name of a `postgres://…/name?…` URL.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(query) => format!("{prefix}/{name}?{query}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Asserts that `result` failed with `code`, and returns the status message.
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<T, beehive_runtime::ServiceError>,
    code: tonic::Code,
) -> String {
    match result {
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
        Err(err) => {
            let status = tonic::Status::from(err);
            assert_eq!(status.code(), code, "message: {}", status.message());
            status.message().to_owned()
        }
    }
}

/// Declares one test per backend running `scenario(&Stack)`.
#[macro_export]
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let stack = Stack::start(Backend::Sqlite).await.expect("sqlite stack");
                super::$scenario(&stack).await;
                stack.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                let Some(stack) = Stack::start(Backend::Postgres).await else {
                    return;
                };
                super::$scenario(&stack).await;
                stack.stop().await;
            }
        }
    };
}
