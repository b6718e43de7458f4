//! Test harness: the chat and message services on 127.0.0.1 over real gRPC, sharing one
//! database (a temp SQLite file, or a fresh PostgreSQL database), with stand-ins for the
//! friend and user services.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use beehive_chat::{ChatDeps, ChatService, Friends, GrpcMessageStats, Users};
use beehive_generated::chat::ChatClient;
use beehive_generated::message::MessageClient;
use beehive_generated::migration::{ChatMigrator, MessageMigrator};
use beehive_message::{
    ChatMembership, HotCache, MemoryHotCache, MessageDeps, MessageService, SharedHotCache,
};
use beehive_runtime::auth::Authenticator;
use beehive_runtime::bus::{Bus, InProcessBus, RelayHandle, RetryPolicy};
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, PoolOptions};
use beehive_runtime::server::{RunningServer, ServerBuilder};
use beehive_runtime::{CallContext, ServiceError};
use sea_orm::{ConnectionTrait, DatabaseConnection};

pub const SECRET: &[u8] = b"chat-message-test-secret";
/// Users with ids below this exist in the stand-in user service.
pub const EXISTING_USERS_BELOW: i64 = 1_000_000;

/// Where the services keep their data.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    /// PostgreSQL server URL; a fresh database is created on it. SQLite when `None`.
    pub postgres: Option<String>,
    /// Redis URL for the hot cache; in-process when `None`.
    pub redis: Option<String>,
}

impl Backends {
    /// PostgreSQL and Redis from the test variables, or `None` (with a skip line) when unset.
    pub fn real() -> Option<Self> {
        let postgres = beehive_runtime::testing::backend_url("BEEHIVE_TEST_POSTGRES_URL")?;
        let redis = beehive_runtime::testing::backend_url("BEEHIVE_TEST_REDIS_URL")?;
        Some(Self {
            postgres: Some(postgres),
            redis: Some(redis),
        })
    }
}

/// Friendships the chat service sees.
#[derive(Default)]
pub struct FakeFriends {
    pairs: Mutex<HashSet<(i64, i64)>>,
}

impl FakeFriends {
    pub fn befriend(&self, a: i64, b: i64) {
        let mut pairs = self.pairs.lock().unwrap();
        pairs.insert((a, b));
        pairs.insert((b, a));
    }

    pub fn unfriend(&self, a: i64, b: i64) {
        let mut pairs = self.pairs.lock().unwrap();
        pairs.remove(&(a, b));
        pairs.remove(&(b, a));
    }
}

#[async_trait]
impl Friends for FakeFriends {
    async fn are_friends(
        &self,
        _ctx: &CallContext,
        user_id: i64,
        friend_id: i64,
    ) -> Result<bool, ServiceError> {
        Ok(self.pairs.lock().unwrap().contains(&(user_id, friend_id)))
    }
}

/// Every id below [`EXISTING_USERS_BELOW`] is a user.
pub struct FakeUsers;

#[async_trait]
impl Users for FakeUsers {
    async fn existing(
        &self,
        _ctx: &CallContext,
        user_ids: &[i64],
    ) -> Result<HashSet<i64>, ServiceError> {
        Ok(user_ids
            .iter()
            .copied()
            .filter(|&id| id > 0 && id < EXISTING_USERS_BELOW)
            .collect())
    }
}

/// Both services running, with clients and the shared database.
pub struct Env {
    pub chat: ChatClient,
    pub message: MessageClient,
    pub db: DatabaseConnection,
    pub friends: Arc<FakeFriends>,
    pub auth: Arc<Authenticator>,
    pub message_service: Arc<MessageService>,
    pub message_addr: SocketAddr,
    pub chat_addr: SocketAddr,
    relay: Option<RelayHandle>,
    servers: Vec<RunningServer>,
    _data: tempfile::TempDir,
}

impl Env {
    /// Starts both services on SQLite with in-process cache and bus.
    pub async fn sqlite() -> Self {
        Self::start(
            &Backends::default(),
            Arc::new(InProcessBus::new(RetryPolicy::default())),
        )
        .await
    }

    /// Starts both services on SQLite with in-process cache and bus and the given configuration.
    pub async fn sqlite_with(config: Config) -> Self {
        Self::start_with(
            &Backends::default(),
            Arc::new(InProcessBus::new(RetryPolicy::default())),
            config,
        )
        .await
    }

    pub async fn start(backends: &Backends, bus: Arc<dyn Bus>) -> Self {
        Self::start_with(backends, bus, Config::default()).await
    }

    /// Starts both services; servers and clients use `server.max_message_bytes` of `config` as
    /// their message size limit, as the `beehive` binary does.
    pub async fn start_with(backends: &Backends, bus: Arc<dyn Bus>, config: Config) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let data = tempfile::tempdir().unwrap();
        let url = match &backends.postgres {
            Some(server) => fresh_postgres_database(server).await,
            None => format!("sqlite://{}", data.path().join("beehive.db").display()),
        };
        let pool = PoolOptions {
            max_connections: 16,
            ..PoolOptions::default()
        };
        let database = db::connect(&url, &pool).await.unwrap();
        database.migrate::<ChatMigrator>().await.unwrap();
        database.migrate::<MessageMigrator>().await.unwrap();
        let db = database.connection.clone();

        let auth = Arc::new(Authenticator::new(SECRET, Duration::from_secs(3600)).unwrap());
        let service_token = auth.issue_service_token().unwrap();
        let config = Arc::new(config);
        let limits = beehive_generated::MessageLimits::both(config.max_message_bytes());
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();

        let hot: Arc<dyn HotCache> = match &backends.redis {
            Some(redis_url) => {
                let cache = beehive_runtime::cache::RedisCache::connect(redis_url)
                    .await
                    .unwrap();
                let namespace = format!("test-{}:", uuid::Uuid::new_v4().simple());
                Arc::new(SharedHotCache::new(
                    Arc::new(cache),
                    &namespace,
                    Duration::from_secs(600),
                ))
            }
            None => Arc::new(MemoryHotCache::new(10_000, Duration::from_secs(600))),
        };

        let chat_addr = free_loopback_port();
        let chat_channel = ServiceChannel::lazy(&format!("http://{chat_addr}")).unwrap();
        let message_service = Arc::new(MessageService::new(MessageDeps {
            db: db.clone(),
            members: Arc::new(ChatMembership::new(
                ChatClient::with_limits(chat_channel.clone(), limits),
                Some(service_token.clone()),
            )),
            hot,
            config: config.message.clone(),
        }));
        let relay = message_service.spawn_relay(bus);
        let message_server = ServerBuilder::new(config.clone(), "message")
            .listen(loopback)
            .authenticator(auth.clone())
            .add_service(beehive_generated::message::server(
                message_service.clone(),
                limits,
            ))
            .start()
            .await
            .unwrap();
        let message_addr = message_server.local_addr();
        let message_channel = ServiceChannel::lazy(&format!("http://{message_addr}")).unwrap();

        let friends = Arc::new(FakeFriends::default());
        let chat_service = Arc::new(ChatService::new(ChatDeps {
            db: db.clone(),
            config: config.chat.clone(),
            friends: friends.clone(),
            users: Arc::new(FakeUsers),
            stats: Arc::new(GrpcMessageStats::new(
                MessageClient::with_limits(message_channel.clone(), limits),
                Some(service_token),
            )),
        }));
        let chat_server = ServerBuilder::new(config.clone(), "chat")
            .listen(chat_addr)
            .authenticator(auth.clone())
            .add_service(beehive_generated::chat::server(chat_service, limits))
            .start()
            .await
            .unwrap();

        Self {
            chat: ChatClient::with_limits(chat_channel, limits),
            message: MessageClient::with_limits(message_channel, limits),
            db,
            friends,
            auth,
            message_service,
            message_addr,
            chat_addr,
            relay: Some(relay),
            servers: vec![chat_server, message_server],
            _data: data,
        }
    }

    /// Cloneable clients for spawned tasks.
    pub fn clients(&self) -> Clients {
        Clients {
            message: self.message.clone(),
            auth: self.auth.clone(),
        }
    }

    /// A request carrying `user_id`'s token.
    pub fn as_user<T>(&self, user_id: i64, message: T) -> tonic::Request<T> {
        let token = self.auth.issue_user_token(user_id).unwrap();
        bearer(message, &token)
    }

    /// A request carrying a service token.
    pub fn as_service<T>(&self, message: T) -> tonic::Request<T> {
        let token = self.auth.issue_service_token().unwrap();
        bearer(message, &token)
    }

    /// Counts the rows of `table`.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
    }

    /// Runs a query returning one integer column `n`.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    pub async fn stop_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.stop().await;
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_relay().await;
        for server in self.servers.drain(..) {
            server.shutdown().await.unwrap();
        }
    }
}

/// The message client and token issuer, for tasks that outlive a borrow of [`Env`].
#[derive(Clone)]
pub struct Clients {
    pub message: MessageClient,
    pub auth: Arc<Authenticator>,
}

impl Clients {
    pub async fn send(
        &self,
        request: beehive_generated::pb::message::SendMessageRequest,
    ) -> Result<i64, ServiceError> {
        let token = self.auth.issue_user_token(request.sender_id).unwrap();
        self.send_with_token(request, &token).await
    }

    /// Sends with a token issued beforehand, so a benchmark does not measure token signing.
    pub async fn send_with_token(
        &self,
        request: beehive_generated::pb::message::SendMessageRequest,
        token: &str,
    ) -> Result<i64, ServiceError> {
        let response = self.message.send_message(bearer(request, token)).await?;
        Ok(response.message_id)
    }
}

fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request.set_timeout(Duration::from_secs(30));
    request
}

/// Reserves a free loopback port for a server that needs its address before it starts.
fn free_loopback_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Creates a uniquely named database on the server at `server_url` and returns its URL.
async fn fresh_postgres_database(server_url: &str) -> String {
    let admin = db::connect(server_url, &PoolOptions::default())
        .await
        .unwrap();
    let name = format!("beehive_msg_{}", uuid::Uuid::new_v4().simple());
    admin
        .connection
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = server_url.rsplit_once('/').map(|(base, _)| base).unwrap();
    format!("{base}/{name}")
}

/// The status code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> tonic::Code {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err.code(),
    }
}

/// Asserts that a call failed with NOT_FOUND and that its message names `field`.
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, ServiceError>, field: &str) {
    let err = match result {
        Ok(value) => panic!("expected NOT_FOUND naming `{field}`, got {value:?}"),
        Err(err) => err,
    };
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
}
