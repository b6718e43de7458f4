//! Chat, message and search services on loopback ports, wired as `beehive up` wires them: the
//! message relay publishes `message.index` to an in-process bus and the search service consumes
//! it. SQLite by default; a fresh PostgreSQL database (and Redis for the message hot cache) when
//! `BEEHIVE_TEST_POSTGRES_URL` (and `BEEHIVE_TEST_REDIS_URL`) are set. The friend and user
//! services are replaced by stand-ins that call every pair friends and every user existing.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use beehive_chat::{ChatDeps, ChatService, Friends, MessageStats, Users};
use beehive_generated::MessageLimits;
use beehive_generated::chat::ChatClient;
use beehive_generated::message::MessageClient;
use beehive_generated::migration::{ChatMigrator, MessageMigrator};
use beehive_generated::pb::message::ConversationStats;
use beehive_generated::pb::search::{SearchMessagesRequest, SearchMessagesResponse};
use beehive_generated::search::SearchClient;
use beehive_message::{ChatMembership, HotCache, MemoryHotCache, MessageDeps, MessageService};
use beehive_runtime::auth::Authenticator;
use beehive_runtime::bus::{Bus, InProcessBus, RelayHandle, RetryPolicy, SubscriptionHandle};
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, PoolOptions};
use beehive_runtime::search::{SearchEngine, TantivyEngine};
use beehive_runtime::server::{RunningServer, ServerBuilder};
use beehive_runtime::testing::{POSTGRES_URL_VAR, REDIS_URL_VAR, backend_url};
use beehive_runtime::{CallContext, ServiceError};
use beehive_search::{SearchDeps, SearchService};
use sea_orm::DatabaseConnection;

/// Deadline of every call a test makes.
pub const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// A database the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always, PostgreSQL too when its URL is set.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if backend_url(POSTGRES_URL_VAR).is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

/// The running services and clients of one test.
pub struct Stack {
    pub backend: Backend,
    pub chat: ChatClient,
    pub message: MessageClient,
    pub search: SearchClient,
    pub db: DatabaseConnection,
    pub engine: Arc<dyn SearchEngine>,
    pub data_dir: tempfile::TempDir,
    auth: Authenticator,
    servers: Vec<RunningServer>,
    relay: Option<RelayHandle>,
    subscription: Option<SubscriptionHandle>,
    postgres_database: Option<(String, String)>,
}

impl Stack {
    pub async fn start(backend: Backend) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Arc::new(Config {
            data_dir: data_dir.path().to_owned(),
            ..Config::default()
        });
        let auth = Authenticator::from_config(&config.auth).expect("authenticator");
        let service_token = auth.issue_service_token().expect("service token");
        let limits = MessageLimits::both(config.max_message_bytes());

        let (url, postgres_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.path().join("beehive.db").display()),
                None,
            ),
            Backend::Postgres => {
                let server = backend_url(POSTGRES_URL_VAR).expect("PostgreSQL URL");
                let name = format!("beehive_search_{}", uuid::Uuid::new_v4().simple());
                let url = db::create_database(&server, &name)
                    .await
                    .expect("create PostgreSQL database");
                (url, Some((server, name)))
            }
        };
        let database = db::connect(&url, &PoolOptions::default())
            .await
            .expect("connect");
        database
            .migrate::<ChatMigrator>()
            .await
            .expect("migrate chat");
        database
            .migrate::<MessageMigrator>()
            .await
            .expect("migrate message");
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(RetryPolicy::default()));

        let chat_logic = ChatService::new(ChatDeps {
            db: database.connection.clone(),
            config: config.chat.clone(),
            friends: Arc::new(EveryoneFriends),
            users: Arc::new(EveryoneExists),
            stats: Arc::new(NoStats),
        });
        let chat_server = start_server(
            &config,
            "chat",
            beehive_generated::chat::server(Arc::new(chat_logic), limits),
        )
        .await;
        let chat_channel = channel(&chat_server);

        let hot: Arc<dyn HotCache> = match (backend, backend_url(REDIS_URL_VAR)) {
            (Backend::Postgres, Some(redis_url)) => {
                let cache = beehive_runtime::cache::RedisCache::connect(&redis_url)
                    .await
                    .expect("connect Redis");
                Arc::new(beehive_message::SharedHotCache::new(
                    Arc::new(cache),
                    &database.name,
                    Duration::from_secs(60),
                ))
            }
            _ => Arc::new(MemoryHotCache::new(1000, Duration::from_secs(60))),
        };
        let message_logic = MessageService::new(MessageDeps {
            db: database.connection.clone(),
            members: Arc::new(ChatMembership::new(
                ChatClient::with_limits(chat_channel.clone(), limits),
                Some(service_token.clone()),
            )),
            hot,
            config: config.message.clone(),
        });
        let relay = message_logic.spawn_relay(Arc::clone(&bus));
        let message_server = start_server(
            &config,
            "message",
            beehive_generated::message::server(Arc::new(message_logic), limits),
        )
        .await;

        let engine: Arc<dyn SearchEngine> =
            Arc::new(TantivyEngine::open(data_dir.path().join("search")).expect("open index"));
        let search_logic = SearchService::new(SearchDeps {
            config: config.search.clone(),
            engine: Arc::clone(&engine),
            chat: ChatClient::with_limits(chat_channel.clone(), limits),
            service_token: Some(service_token),
        });
        let subscription = search_logic
            .spawn_background(Arc::clone(&bus))
            .await
            .expect("subscribe");
        let search_server = start_server(
            &config,
            "search",
            beehive_generated::search::server(Arc::new(search_logic), limits),
        )
        .await;

        Self {
            backend,
            chat: ChatClient::with_limits(chat_channel, limits),
            message: MessageClient::with_limits(channel(&message_server), limits),
            search: SearchClient::with_limits(channel(&search_server), limits),
            db: database.connection,
            engine,
            data_dir,
            auth,
            servers: vec![search_server, message_server, chat_server],
            relay: Some(relay),
            subscription: Some(subscription),
            postgres_database,
        }
    }

    /// Wraps `message` in a request carrying a user token for `user_id`.
    pub fn as_user<T>(&self, user_id: i64, message: T) -> tonic::Request<T> {
        let token = self.auth.issue_user_token(user_id).expect("token");
        with_token(&token, message)
    }

    /// Wraps `message` in a request carrying a service token.
    pub fn as_service<T>(&self, message: T) -> tonic::Request<T> {
        let token = self.auth.issue_service_token().expect("token");
        with_token(&token, message)
    }

    /// Searches as `user_id` in all of the user's conversations, first page of 20.
    pub async fn search_as(
        &self,
        user_id: i64,
        keyword: &str,
    ) -> Result<SearchMessagesResponse, ServiceError> {
        let request = SearchMessagesRequest {
            keyword: keyword.to_owned(),
            user_id,
            ..SearchMessagesRequest::default()
        };
        self.search
            .search_messages(self.as_user(user_id, request))
            .await
    }

    /// Repeats a search until `done` accepts its response or `limit` passes; returns the last
    /// response and the time it took.
    pub async fn search_until(
        &self,
        user_id: i64,
        keyword: &str,
        limit: Duration,
        done: impl Fn(&SearchMessagesResponse) -> bool,
    ) -> (SearchMessagesResponse, Duration) {
        let started = Instant::now();
        loop {
            let response = self.search_as(user_id, keyword).await.expect("search");
            if done(&response) || started.elapsed() >= limit {
                return (response, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the stack in the order `beehive` does: servers, relay, then the index consumer,
    /// which commits the index. Returns the data directory, still on disk.
    pub async fn stop(mut self) -> tempfile::TempDir {
        for server in self.servers.drain(..) {
            server.shutdown().await.expect("shutdown");
        }
        if let Some(relay) = self.relay.take() {
            relay.stop().await;
        }
        if let Some(subscription) = self.subscription.take() {
            beehive_search::stop_indexing(subscription, self.engine.as_ref()).await;
        }
        self.db.clone().close().await.ok();
        if let Some((server, name)) = self.postgres_database.take() {
            db::drop_database(&server, &name).await.ok();
        }
        self.data_dir
    }
}

async fn start_server<S>(config: &Arc<Config>, name: &str, service: S) -> RunningServer
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    ServerBuilder::new(Arc::clone(config), name)
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .add_service(service)
        .start()
        .await
        .expect("start server")
}

fn channel(server: &RunningServer) -> ServiceChannel {
    ServiceChannel::lazy(&format!("http://{}", server.local_addr())).expect("channel")
}

fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_DEADLINE);
    let value = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

/// Stand-in for the friend service: every pair of users are friends.
struct EveryoneFriends;

#[async_trait]
impl Friends for EveryoneFriends {
    async fn are_friends(
        &self,
        _ctx: &CallContext,
        _user_id: i64,
        _friend_id: i64,
    ) -> Result<bool, ServiceError> {
        Ok(true)
    }
}

/// Stand-in for the user service: every user exists.
struct EveryoneExists;

#[async_trait]
impl Users for EveryoneExists {
    async fn existing(
        &self,
        _ctx: &CallContext,
        user_ids: &[i64],
    ) -> Result<HashSet<i64>, ServiceError> {
        Ok(user_ids.iter().copied().collect())
    }
}

/// Stand-in for the message service's counters: no conversation has messages.
struct NoStats;

#[async_trait]
impl MessageStats for NoStats {
    async fn stats(
        &self,
        _ctx: &CallContext,
        _user_id: i64,
        conversation_ids: &[i64],
    ) -> Result<Vec<ConversationStats>, ServiceError> {
        Ok(conversation_ids
            .iter()
            .map(|&conversation_id| ConversationStats {
                conversation_id,
                ..ConversationStats::default()
            })
            .collect())
    }
}
