//! A running deployment inside this process: the backends named by the configuration, the
//! migrations, and one gRPC server per selected service with its background tasks.
//!
//! `beehive up` starts all six with static discovery filled by the servers themselves, so port 0
//! works; `beehive serve <svc>` starts one, registered in the configured discovery (etcd).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use beehive_generated::MessageLimits;
use beehive_generated::migration::{
    ChatMigrator, FileMigrator, FriendMigrator, MessageMigrator, UserMigrator,
};
use beehive_runtime::auth::Authenticator;
use beehive_runtime::bus::{Bus, InProcessBus, RabbitBus, RabbitConfig, RetryPolicy};
use beehive_runtime::cache::Cache;
use beehive_runtime::client::ClientFactory;
use beehive_runtime::config::Config;
use beehive_runtime::db::{Database, PoolOptions};
use beehive_runtime::discovery::{Discovery, StaticDiscovery};
use beehive_runtime::mail::{FileMailer, Mailer, SmtpMailer};
use beehive_runtime::search::{DEFAULT_INDEX, ElasticsearchEngine, SearchEngine, TantivyEngine};
use beehive_runtime::server::{RunningServer, ServerBuilder};
use beehive_runtime::storage::{FileStore, LocalStore};
use beehive_runtime::telemetry::AdminServer;
use beehive_runtime::token_users::{TOKEN_USERS_TTL, TokenUsers};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::cli::ServiceName;

/// Conversations whose newest messages the in-process hot cache keeps. Each holds up to
/// `message.hot_cache_size` messages, so this bounds the cache's memory.
const HOT_CACHE_CONVERSATIONS: u64 = 4_096;
/// Folder of the search index inside `data_dir`.
const SEARCH_DIR: &str = "search";
/// Folder of the mail outbox inside `data_dir`.
pub const OUTBOX_DIR: &str = "outbox";

/// How the servers of a stack find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryMode {
    /// The servers of this process register in an empty static discovery (`beehive up`).
    InProcess,
    /// `discovery.*` of the configuration: etcd when endpoints are set (`beehive serve`).
    Configured,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub services: Vec<ServiceName>,
    pub discovery: DiscoveryMode,
    /// Starts the admin server (`/metrics`, `/healthz`) on `admin.listen`.
    pub admin: bool,
    /// RabbitMQ exchange instead of the default, so parallel tests do not share queues.
    pub bus_exchange: Option<String>,
}

impl StackOptions {
    /// All six services, as `beehive up` runs them.
    pub fn all() -> Self {
        Self {
            services: ServiceName::ALL.to_vec(),
            discovery: DiscoveryMode::InProcess,
            admin: true,
            bus_exchange: None,
        }
    }
}

/// The backends a stack runs on, opened from the configuration.
pub struct Backends {
    pub db: Database,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<dyn Bus>,
    /// Opened only for the search service: one process at a time may write a tantivy index.
    pub engine: Option<Arc<dyn SearchEngine>>,
    /// Opened only for the user service.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// Opened only for the file service.
    pub store: Option<Arc<dyn FileStore>>,
    /// One line per concern, naming the backend in use.
    pub description: Vec<(&'static str, String)>,
}

impl Backends {
    /// Opens the backends the configuration names, as far as `services` need them.
    pub async fn open(
        config: &Config,
        services: &[ServiceName],
        bus_exchange: Option<&str>,
    ) -> anyhow::Result<Self> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("failed to create data_dir {}", data_dir.display()))?;
        let mut description = Vec::new();

        let db = connect_database(config).await?;
        description.push((
            "database",
            match &config.database.url {
                Some(_) => format!("{:?} database `{}`", db.backend(), db.name),
                None => format!("SQLite {}", data_dir.join("beehive.db").display()),
            },
        ));

        let cache = beehive_runtime::cache::from_config(&config.cache)
            .await
            .context("failed to connect to the cache (cache.redis_url)")?;
        description.push((
            "cache",
            match &config.cache.redis_url {
                Some(url) => format!("Redis {}", redact(url)),
                None => "in-process (moka)".to_owned(),
            },
        ));

        let retry = RetryPolicy {
            max_attempts: config.bus.max_retries,
            ..RetryPolicy::default()
        };
        let bus: Arc<dyn Bus> = match &config.bus.amqp_url {
            Some(url) => {
                let mut rabbit = RabbitConfig::new(url.clone());
                rabbit.retry = retry;
                if let Some(exchange) = bus_exchange {
                    rabbit.exchange = exchange.to_owned();
                }
                description.push((
                    "bus",
                    format!("RabbitMQ {} exchange {}", redact(url), rabbit.exchange),
                ));
                Arc::new(RabbitBus::new(rabbit).context("invalid bus configuration (bus.*)")?)
            }
            None => {
                description.push(("bus", "in-process".to_owned()));
                Arc::new(InProcessBus::new(retry))
            }
        };

        let engine = if services.contains(&ServiceName::Search) {
            Some(open_engine(config, &mut description).await?)
        } else {
            None
        };
        let mailer = if services.contains(&ServiceName::User) {
            Some(open_mailer(config, &mut description)?)
        } else {
            None
        };
        let store: Option<Arc<dyn FileStore>> = if services.contains(&ServiceName::File) {
            let store = LocalStore::open(data_dir).await.with_context(|| {
                format!("failed to open file storage in {}", data_dir.display())
            })?;
            description.push(("files", format!("{}/files", data_dir.display())));
            Some(Arc::new(store))
        } else {
            None
        };

        Ok(Self {
            db,
            cache,
            bus,
            engine,
            mailer,
            store,
            description,
        })
    }
}

async fn open_engine(
    config: &Config,
    description: &mut Vec<(&'static str, String)>,
) -> anyhow::Result<Arc<dyn SearchEngine>> {
    match &config.search.elasticsearch_url {
        Some(url) => {
            description.push(("search", format!("Elasticsearch {}", redact(url))));
            let engine = ElasticsearchEngine::connect(url, DEFAULT_INDEX)
                .await
                .context("failed to connect to Elasticsearch (search.elasticsearch_url)")?;
            Ok(Arc::new(engine))
        }
        None => {
            let dir = config.data_dir.join(SEARCH_DIR);
            description.push(("search", format!("tantivy {}", dir.display())));
            let engine = TantivyEngine::open(&dir)
                .with_context(|| format!("failed to open the index {}", dir.display()))?;
            Ok(Arc::new(engine))
        }
    }
}

fn open_mailer(
    config: &Config,
    description: &mut Vec<(&'static str, String)>,
) -> anyhow::Result<Arc<dyn Mailer>> {
    let from = beehive_runtime::mail::parse_mailbox(&config.mail.from)
        .context("invalid configuration key `mail.from`")?;
    match &config.mail.smtp_url {
        Some(url) => {
            description.push(("mail", format!("SMTP {}", redact(url))));
            let mailer = SmtpMailer::new(url, from).context("invalid `mail.smtp_url`")?;
            Ok(Arc::new(mailer))
        }
        None => {
            let dir = config.data_dir.join(OUTBOX_DIR);
            description.push(("mail", format!(".eml files in {}", dir.display())));
            let mailer = FileMailer::open(&dir, from)
                .with_context(|| format!("failed to open the outbox {}", dir.display()))?;
            Ok(Arc::new(mailer))
        }
    }
}

/// Connects to `database.url`, or to the SQLite file in `data_dir`.
pub async fn connect_database(config: &Config) -> anyhow::Result<Database> {
    let pool = PoolOptions {
        max_connections: config.database.max_connections,
        min_connections: config.database.min_connections,
        ..PoolOptions::default()
    };
    beehive_runtime::db::connect(&config.database_url(), &pool)
        .await
        .context("failed to open the database (database.url)")
}

/// `beehive migrate`: applies every service's pending migrations and exits.
pub async fn migrate_all(config: &Config) -> anyhow::Result<()> {
    let db = connect_database(config).await?;
    migrate(&db, &ServiceName::ALL).await?;
    println!("migrations applied to database `{}`", db.name);
    Ok(())
}

/// `beehive reindex`: indexes every stored text message again, showing progress, then commits
/// the index. Documents are replaced by message id, so a repeated run changes nothing.
pub async fn reindex(config: &Config, batch_size: u64) -> anyhow::Result<()> {
    let db = connect_database(config).await?;
    migrate(&db, &[ServiceName::Message]).await?;
    let mut description = Vec::new();
    let engine = open_engine(config, &mut description).await?;
    for (concern, backend) in &description {
        eprintln!("{concern}: {backend}");
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{wide_bar} {pos}/{len} messages ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done =
        beehive_search::reindex::reindex(&db.connection, engine.as_ref(), batch_size, |progress| {
            bar.set_length(progress.total);
            bar.set_position(progress.indexed);
        })
        .await
        .context("failed to rebuild the search index")?;
    bar.finish_and_clear();
    println!(
        "indexed {} text messages from database `{}`",
        done.indexed, db.name
    );
    Ok(())
}

/// Applies the pending migrations of the tables `services` own.
pub async fn migrate(db: &Database, services: &[ServiceName]) -> anyhow::Result<()> {
    for service in services {
        let migrated = match service {
            ServiceName::User => db.migrate::<UserMigrator>().await,
            ServiceName::Friend => db.migrate::<FriendMigrator>().await,
            ServiceName::Message => db.migrate::<MessageMigrator>().await,
            ServiceName::Chat => db.migrate::<ChatMigrator>().await,
            ServiceName::File => db.migrate::<FileMigrator>().await,
            // The search index lives outside the database.
            ServiceName::Search => Ok(()),
        };
        migrated.with_context(|| format!("failed to migrate the {} tables", service.as_str()))?;
        tracing::info!(service = service.as_str(), "migrations applied");
    }
    Ok(())
}

type StopTask = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// A running deployment; [`Stack::shutdown`] stops it.
pub struct Stack {
    servers: Vec<(ServiceName, RunningServer)>,
    background: Vec<StopTask>,
    admin: Option<AdminServer>,
    data_dir: PathBuf,
    backends: Vec<(&'static str, String)>,
    authenticator: Arc<Authenticator>,
}

impl Stack {
    /// Opens the backends, applies migrations and starts the selected services.
    pub async fn start(config: Arc<Config>, options: StackOptions) -> anyhow::Result<Self> {
        let backends =
            Backends::open(&config, &options.services, options.bus_exchange.as_deref()).await?;
        migrate(&backends.db, &options.services).await?;

        let static_discovery = StaticDiscovery::empty();
        let discovery: Arc<dyn Discovery> = match options.discovery {
            DiscoveryMode::InProcess => Arc::new(static_discovery.clone()),
            DiscoveryMode::Configured => beehive_runtime::discovery::from_config(&config),
        };
        let factory = ClientFactory::new(Arc::clone(&config), Arc::clone(&discovery))
            .context("invalid configuration key `auth.jwt_secret`")?;
        let authenticator = Arc::clone(factory.authenticator());
        let service_token = factory
            .service_token()
            .context("failed to sign the service token")?;
        let limits = MessageLimits::both(config.max_message_bytes());
        // Every service but the user service, which reads its own table, looks a token's user
        // up through the user service's GetUsersByIds.
        let token_users = Arc::new(TokenUsers::new(
            Arc::new(beehive_chat::GrpcUsers::new(
                beehive_generated::user::UserClient::with_limits(factory.channel("user"), limits),
                Some(service_token.clone()),
            )),
            TOKEN_USERS_TTL,
        ));

        let mut stack = Self {
            servers: Vec::new(),
            background: Vec::new(),
            admin: None,
            data_dir: config.data_dir.clone(),
            backends: backends.description.clone(),
            authenticator: Arc::clone(&authenticator),
        };
        let context = ServiceContext {
            config: Arc::clone(&config),
            backends: &backends,
            factory: &factory,
            authenticator: &authenticator,
            service_token: &service_token,
            limits,
            discovery: &discovery,
            token_users: &token_users,
        };
        for service in &options.services {
            match context.start(*service, &mut stack.background).await {
                Ok(server) => stack.servers.push((*service, server)),
                Err(err) => {
                    stack.shutdown().await;
                    return Err(err);
                }
            }
        }

        if options.admin {
            match AdminServer::start(config.admin.listen).await {
                Ok(admin) => stack.admin = Some(admin),
                Err(err) => {
                    stack.shutdown().await;
                    return Err(err).context("failed to start the admin server (admin.listen)");
                }
            }
        }
        Ok(stack)
    }

    /// The bound address of `service`, if this stack runs it.
    pub fn address(&self, service: ServiceName) -> Option<SocketAddr> {
        self.servers
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, server)| server.local_addr())
    }

    /// Addresses of all six services, or `None` unless this stack runs all of them.
    pub fn addresses(&self) -> Option<[SocketAddr; 6]> {
        let mut addresses = [SocketAddr::from(([0, 0, 0, 0], 0)); 6];
        for service in ServiceName::ALL {
            addresses[service.index()] = self.address(service)?;
        }
        Some(addresses)
    }

    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    pub fn data_dir(&self) -> &PathBuf {
        &self.data_dir
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join(OUTBOX_DIR)
    }

    /// Issues and verifies tokens with the stack's `auth.jwt_secret`.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.authenticator
    }

    /// The start-up banner: each address, the data folder and the backends in use.
    pub fn banner(&self) -> String {
        let mut lines = vec![format!(
            "Beehive is running ({} service{})",
            self.servers.len(),
            if self.servers.len() == 1 { "" } else { "s" }
        )];
        for (service, server) in &self.servers {
            lines.push(format!("  {:<8} {}", service.as_str(), server.local_addr()));
        }
        if let Some(admin) = self.admin_address() {
            lines.push(format!("  {:<8} http://{admin}/metrics", "admin"));
        }
        lines.push(format!("  data     {}", self.data_dir.display()));
        for (concern, backend) in &self.backends {
            lines.push(format!("  {concern:<8} {backend}"));
        }
        lines.join("\n")
    }

    /// Deregisters and drains every server, then stops the background tasks in the order the
    /// services started: the message relay before the search consumer, which commits the index
    /// last.
    pub async fn shutdown(mut self) {
        let servers = std::mem::take(&mut self.servers);
        let stopping = servers.into_iter().map(|(service, server)| async move {
            if let Err(err) = server.shutdown().await {
                tracing::error!(service = service.as_str(), error = %err, "server shutdown failed");
            }
        });
        futures::future::join_all(stopping).await;
        for stop in std::mem::take(&mut self.background) {
            stop().await;
        }
        if let Some(admin) = self.admin.take() {
            admin.stop();
        }
    }
}

/// Everything the constructors of the services share.
struct ServiceContext<'a> {
    config: Arc<Config>,
    backends: &'a Backends,
    factory: &'a ClientFactory,
    authenticator: &'a Arc<Authenticator>,
    service_token: &'a str,
    limits: MessageLimits,
    discovery: &'a Arc<dyn Discovery>,
    token_users: &'a Arc<TokenUsers>,
}

impl ServiceContext<'_> {
    fn builder(&self, service: ServiceName) -> ServerBuilder {
        let builder = ServerBuilder::new(Arc::clone(&self.config), service.as_str())
            .descriptor_set(beehive_generated::FILE_DESCRIPTOR_SET)
            .discovery(Arc::clone(self.discovery))
            .authenticator(Arc::clone(self.authenticator));
        match service {
            ServiceName::User => builder,
            _ => builder.token_users(Arc::clone(self.token_users)),
        }
    }

    fn token(&self) -> Option<String> {
        Some(self.service_token.to_owned())
    }

    /// Builds `service`, starts its background tasks (adding their stoppers to `background`)
    /// and its server.
    async fn start(
        &self,
        service: ServiceName,
        background: &mut Vec<StopTask>,
    ) -> anyhow::Result<RunningServer> {
        let config = &self.config;
        let backends = self.backends;
        let factory = self.factory;
        let limits = self.limits;
        let builder = self.builder(service);

        let builder = match service {
            ServiceName::User => {
                let logic = beehive_user::UserService::new(beehive_user::UserDeps {
                    config: Arc::clone(config),
                    db: backends.db.connection.clone(),
                    db_name: backends.db.name.clone(),
                    cache: Arc::clone(&backends.cache),
                    mailer: required(&backends.mailer, "mailer")?,
                    authenticator: Arc::clone(self.authenticator),
                });
                builder.add_service(beehive_generated::user::server(Arc::new(logic), limits))
            }
            ServiceName::Friend => {
                let logic = beehive_friend::FriendService::new(beehive_friend::FriendDeps {
                    config: Arc::clone(config),
                    db: backends.db.connection.clone(),
                    db_name: backends.db.name.clone(),
                    cache: Arc::clone(&backends.cache),
                    users: beehive_generated::user::UserClient::with_limits(
                        factory.channel("user"),
                        limits,
                    ),
                });
                let tasks = logic.spawn_background(Arc::clone(&backends.bus));
                background.push(Box::new(move || Box::pin(tasks.stop())));
                builder.add_service(beehive_generated::friend::server(Arc::new(logic), limits))
            }
            ServiceName::Message => {
                let hot: Arc<dyn beehive_message::HotCache> = match &config.cache.redis_url {
                    Some(_) => Arc::new(beehive_message::SharedHotCache::new(
                        Arc::clone(&backends.cache),
                        &backends.db.name,
                        Duration::from_secs(config.message.hot_cache_ttl_secs),
                    )),
                    None => Arc::new(beehive_message::MemoryHotCache::new(
                        HOT_CACHE_CONVERSATIONS,
                        Duration::from_secs(config.message.hot_cache_ttl_secs),
                    )),
                };
                let members = Arc::new(beehive_message::ChatMembership::new(
                    beehive_generated::chat::ChatClient::with_limits(
                        factory.channel("chat"),
                        limits,
                    ),
                    self.token(),
                ));
                let logic = beehive_message::MessageService::new(beehive_message::MessageDeps {
                    db: backends.db.connection.clone(),
                    members,
                    hot,
                    config: config.message.clone(),
                });
                let relay = logic.spawn_relay(Arc::clone(&backends.bus));
                background.push(Box::new(move || Box::pin(relay.stop())));
                builder.add_service(beehive_generated::message::server(Arc::new(logic), limits))
            }
            ServiceName::Chat => {
                let token = self.token();
                let logic = beehive_chat::ChatService::new(beehive_chat::ChatDeps {
                    db: backends.db.connection.clone(),
                    config: config.chat.clone(),
                    friends: Arc::new(beehive_chat::GrpcFriends::new(
                        beehive_generated::friend::FriendClient::with_limits(
                            factory.channel("friend"),
                            limits,
                        ),
                        token.clone(),
                    )),
                    users: Arc::new(beehive_chat::GrpcUsers::new(
                        beehive_generated::user::UserClient::with_limits(
                            factory.channel("user"),
                            limits,
                        ),
                        token.clone(),
                    )),
                    stats: Arc::new(beehive_chat::GrpcMessageStats::new(
                        beehive_generated::message::MessageClient::with_limits(
                            factory.channel("message"),
                            limits,
                        ),
                        token,
                    )),
                });
                builder.add_service(beehive_generated::chat::server(Arc::new(logic), limits))
            }
            ServiceName::File => {
                let logic = Arc::new(beehive_file::FileService::new(beehive_file::FileDeps {
                    config: config.file.clone(),
                    db: backends.db.connection.clone(),
                    store: required(&backends.store, "file store")?,
                }));
                let cancel = CancellationToken::new();
                let sweep = logic.spawn_background(cancel.clone());
                background.push(Box::new(move || {
                    Box::pin(async move {
                        cancel.cancel();
                        if let Err(err) = sweep.await {
                            tracing::error!(error = %err, "the upload expiry sweep failed");
                        }
                    })
                }));
                builder.add_service(beehive_generated::file::server(logic, limits))
            }
            ServiceName::Search => {
                let engine = required(&backends.engine, "search engine")?;
                let logic = beehive_search::SearchService::new(beehive_search::SearchDeps {
                    config: config.search.clone(),
                    engine: Arc::clone(&engine),
                    chat: beehive_generated::chat::ChatClient::with_limits(
                        factory.channel("chat"),
                        limits,
                    ),
                    service_token: self.token(),
                });
                let subscription = logic
                    .spawn_background(Arc::clone(&backends.bus))
                    .await
                    .context("failed to subscribe the search index to message.index")?;
                background.push(Box::new(move || {
                    Box::pin(async move {
                        beehive_search::stop_indexing(subscription, engine.as_ref()).await;
                    })
                }));
                builder.add_service(beehive_generated::search::server(Arc::new(logic), limits))
            }
        };
        builder
            .start()
            .await
            .with_context(|| format!("failed to start the {} service", service.as_str()))
    }
}

/// A backend [`Backends::open`] opens for the service being started.
fn required<T: ?Sized>(backend: &Option<Arc<T>>, name: &str) -> anyhow::Result<Arc<T>> {
    backend
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the {name} was not opened for this service"))
}

/// Hides the password of a URL such as `amqp://guest:guest@host`.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if rest.contains(':') && at > scheme.len() => {
            let credentials = &url[scheme.len() + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{}", &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}
