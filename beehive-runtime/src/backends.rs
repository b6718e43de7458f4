//! Every backend a service needs, built from configuration.
//!
//! Each concern uses its embedded default unless its URL is set: a SQLite file, the in-process
//! cache and bus, a tantivy index, `.eml` files and a local file store, all under `data_dir`.

use std::sync::Arc;
use std::time::Duration;

use crate::bus::{
    Bus, BusError, InProcessBus, Outbox, OutboxRelay, RabbitBus, RabbitConfig, RelayConfig,
    RelayHandle, RetryPolicy,
};
use crate::cache::{self, Cache, CacheError};
use crate::config::Config;
use crate::db::{self, Database, DbError, PoolOptions};
use crate::mail::{FileMailer, MailError, Mailer, SmtpMailer, parse_mailbox};
use crate::search::{DEFAULT_INDEX, ElasticsearchEngine, SearchEngine, SearchError, TantivyEngine};
use crate::storage::{FileStore, LocalStore, StorageError};

/// Pause before an in-process bus retries a failed handler.
const IN_PROCESS_RETRY_DELAY: Duration = Duration::from_millis(100);

/// A backend that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("database backend")]
    Database(#[from] DbError),
    #[error("cache backend")]
    Cache(#[from] CacheError),
    #[error("bus backend")]
    Bus(#[from] BusError),
    #[error("search backend")]
    Search(#[from] SearchError),
    #[error("mail backend")]
    Mail(#[from] MailError),
    #[error("file storage backend")]
    Storage(#[from] StorageError),
}

/// The database, cache, bus, search engine, mailer and file store of one process.
#[derive(Clone)]
pub struct Backends {
    pub db: Database,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<dyn Bus>,
    pub search: Arc<dyn SearchEngine>,
    pub mail: Arc<dyn Mailer>,
    pub storage: Arc<dyn FileStore>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("db", &self.db.name)
            .finish_non_exhaustive()
    }
}

impl Backends {
    /// Connects or opens every backend. Migrations are not run here; see [`Database::migrate`].
    pub async fn from_config(config: &Config) -> Result<Self, BackendError> {
        let pool = PoolOptions {
            max_connections: config.database.max_connections,
            min_connections: config.database.min_connections,
            ..PoolOptions::default()
        };
        let db = db::connect(&config.database_url(), &pool).await?;
        let cache = cache::from_config(&config.cache).await?;

        let retry = RetryPolicy {
            max_attempts: config.bus.max_retries.max(1),
            delay: IN_PROCESS_RETRY_DELAY,
        };
        let bus: Arc<dyn Bus> = match &config.bus.amqp_url {
            Some(url) => {
                let mut rabbit = RabbitConfig::new(url);
                rabbit.retry = retry;
                Arc::new(RabbitBus::new(rabbit)?)
            }
            None => Arc::new(InProcessBus::new(retry)),
        };

        let search: Arc<dyn SearchEngine> = match &config.search.elasticsearch_url {
            Some(url) => Arc::new(ElasticsearchEngine::connect(url, DEFAULT_INDEX).await?),
            None => Arc::new(TantivyEngine::open(config.data_dir.join("search"))?),
        };

        let from = parse_mailbox(&config.mail.from)?;
        let mail: Arc<dyn Mailer> = match &config.mail.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url, from)?),
            None => Arc::new(FileMailer::open(config.data_dir.join("outbox"), from)?),
        };

        let storage: Arc<dyn FileStore> = Arc::new(LocalStore::open(&config.data_dir).await?);

        tracing::info!(
            data_dir = %config.data_dir.display(),
            database = %db.name,
            redis = config.cache.redis_url.is_some(),
            rabbitmq = config.bus.amqp_url.is_some(),
            elasticsearch = config.search.elasticsearch_url.is_some(),
            smtp = config.mail.smtp_url.is_some(),
            "backends ready"
        );
        Ok(Self {
            db,
            cache,
            bus,
            search,
            mail,
            storage,
        })
    }

    /// Starts a relay that moves `outbox` rows of this database to this bus.
    pub fn spawn_relay(&self, outbox: &Outbox) -> RelayHandle {
        OutboxRelay::new(
            self.db.connection.clone(),
            outbox.clone(),
            Arc::clone(&self.bus),
            RelayConfig::default(),
        )
        .spawn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Event, Subscription};
    use crate::search::{MessageDocument, SearchQuery};
    use sea_orm::ConnectionTrait;

    #[tokio::test]
    async fn embedded_defaults_live_in_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };

        let backends = Backends::from_config(&config).await.unwrap();

        for path in ["beehive.db", "search", "outbox", "files", "uploads"] {
            assert!(dir.path().join(path).exists(), "{path} is missing");
        }
        backends
            .mail
            .send("user@example.com", "Code", "Your code is 123456.")
            .await
            .unwrap();
        assert_eq!(
            crate::mail::latest_code(&dir.path().join("outbox"), "user@example.com")
                .unwrap()
                .as_deref(),
            Some("123456")
        );

        backends
            .search
            .index(&[MessageDocument {
                message_id: 1,
                conversation_id: 1,
                sender_id: 1,
                content: "嵌入式默认".to_owned(),
                created_at: 0,
            }])
            .await
            .unwrap();
        backends.search.refresh().await.unwrap();
        let page = backends
            .search
            .search(&SearchQuery {
                keyword: "默认".to_owned(),
                conversation_ids: vec![1],
                page: 1,
                page_size: 10,
            })
            .await
            .unwrap();
        assert_eq!(page.total, 1);

        let outbox = Outbox::new("message_outbox").unwrap();
        backends
            .db
            .connection
            .execute(&outbox.create_table_statement())
            .await
            .unwrap();
        let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
        let _subscription = backends
            .bus
            .subscribe(
                Subscription::competing("index", &["message.index"]),
                Arc::new(Forward(sender)),
            )
            .await
            .unwrap();
        let relay = backends.spawn_relay(&outbox);
        let event = Event::new("message.index", serde_json::json!({ "message_id": 1 }));
        outbox
            .insert(&backends.db.connection, &event)
            .await
            .unwrap();
        outbox.wake_relay();

        let delivered = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .unwrap();
        assert_eq!(delivered, Some(event));
        relay.stop().await;
    }

    struct Forward(tokio::sync::mpsc::UnboundedSender<Event>);

    #[async_trait::async_trait]
    impl crate::bus::EventHandler for Forward {
        async fn handle(&self, event: &Event) -> Result<(), crate::bus::HandlerError> {
            self.0.send(event.clone())?;
            Ok(())
        }
    }
}
