//! Helpers shared by the bus tests: recording handlers, waiting, RabbitMQ set-up and clean-up.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use beehive_runtime::bus::{
    Bus, BusError, DeadLetter, Event, EventHandler, HandlerError, InProcessBus, Outbox,
    OutboxRelay, RabbitBus, RabbitConfig, RelayConfig, RetryPolicy, Subscription,
    SubscriptionHandle,
};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use sea_orm::sea_query::{Alias, Table};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
use tokio::sync::Notify;
use uuid::Uuid;

/// Handler calls per event in the tests.
pub const MAX_ATTEMPTS: u32 = 3;
/// Maximum wait for deliveries before a test fails.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: MAX_ATTEMPTS,
        delay: Duration::from_millis(10),
    }
}

/// Records every event it handles; fails every call for the ids in `poison`.
#[derive(Default)]
pub struct Recorder {
    handled: Mutex<Vec<Event>>,
    calls: Mutex<HashMap<Uuid, u32>>,
    poison: Mutex<Vec<Uuid>>,
    changed: Notify,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn poison(&self, id: Uuid) {
        self.poison.lock().unwrap().push(id);
    }

    pub fn handled_ids(&self) -> Vec<Uuid> {
        self.handled
            .lock()
            .unwrap()
            .iter()
            .map(|event| event.id)
            .collect()
    }

    pub fn handled(&self) -> Vec<Event> {
        self.handled.lock().unwrap().clone()
    }

    pub fn calls(&self, id: Uuid) -> u32 {
        self.calls.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    /// Waits until `done` holds for this recorder, or fails after [`DELIVERY_TIMEOUT`].
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        while !done(self) {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !remaining.is_zero(),
                "timed out waiting for {what}; handled {} events",
                self.handled.lock().unwrap().len()
            );
            let _ = tokio::time::timeout(
                remaining.min(Duration::from_millis(50)),
                self.changed.notified(),
            )
            .await;
        }
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        *self.calls.lock().unwrap().entry(event.id).or_default() += 1;
        let poisoned = self.poison.lock().unwrap().contains(&event.id);
        if poisoned {
            self.changed.notify_waiters();
            return Err(format!("event {} is poison", event.id).into());
        }
        self.handled.lock().unwrap().push(event.clone());
        self.changed.notify_waiters();
        Ok(())
    }
}

/// A bus under test and what it needs for clean-up.
pub struct TestBus {
    pub bus: Arc<dyn Bus>,
    pub rabbit: Option<RabbitConfig>,
    groups: Mutex<Vec<String>>,
}

impl TestBus {
    pub fn in_process() -> Self {
        Self {
            bus: Arc::new(InProcessBus::new(retry_policy())),
            rabbit: None,
            groups: Mutex::new(Vec::new()),
        }
    }

    /// A RabbitMQ bus on a unique exchange, so parallel tests never share queues.
    pub fn rabbit(url: &str) -> Self {
        let mut config = RabbitConfig::new(url);
        config.exchange = format!("beehive.test.{}", Uuid::new_v4().simple());
        config.retry = retry_policy();
        config.reconnect_delay = Duration::from_millis(300);
        config.fan_out_expiry = Duration::from_secs(30);
        Self {
            bus: Arc::new(RabbitBus::new(config.clone()).unwrap()),
            rabbit: Some(config),
            groups: Mutex::new(Vec::new()),
        }
    }

    pub async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<Recorder>,
    ) -> SubscriptionHandle {
        self.groups.lock().unwrap().push(subscription.group.clone());
        self.bus.subscribe(subscription, handler).await.unwrap()
    }

    pub async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        self.bus.publish(events).await
    }

    pub async fn dead_letters(&self, group: &str) -> Vec<DeadLetter> {
        self.groups.lock().unwrap().push(group.to_owned());
        self.bus.take_dead_letters(group, 100).await.unwrap()
    }

    /// Deletes the exchanges and durable queues a RabbitMQ test declared.
    async fn clean_up(&self) {
        let Some(config) = &self.rabbit else {
            return;
        };
        let groups = self.groups.lock().unwrap().clone();
        let Ok(connection) =
            Connection::connect(&config.url, ConnectionProperties::default()).await
        else {
            return;
        };
        let Ok(channel) = connection.create_channel().await else {
            return;
        };
        for group in groups {
            for queue in [
                format!("{}.{group}", config.exchange),
                format!("{}.dead.{group}", config.exchange),
            ] {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
        }
        for exchange in [config.exchange.clone(), format!("{}.dead", config.exchange)] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = connection.close(200, "clean-up".into()).await;
    }
}

impl Drop for TestBus {
    /// Cleans up on a thread of its own, so a panicking test still leaves no queues behind.
    fn drop(&mut self) {
        if self.rabbit.is_none() {
            return;
        }
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(self.clean_up());
            });
        });
    }
}

pub fn events(topic: &str, count: usize) -> Vec<Event> {
    (0..count)
        .map(|index| Event::new(topic, serde_json::json!({ "index": index })))
        .collect()
}

pub fn ids(events: &[Event]) -> Vec<Uuid> {
    events.iter().map(|event| event.id).collect()
}

pub fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// A database with a uniquely named outbox table, dropped at the end.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("outbox.db").display()
        );
        Self::open(&url, Some(dir)).await
    }

    pub async fn open(url: &str, dir: Option<tempfile::TempDir>) -> Self {
        let db = Database::connect(url).await.unwrap();
        let table = format!(
            "outbox_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let outbox = Outbox::new(&table).unwrap();
        db.execute(&outbox.create_table_statement()).await.unwrap();
        db.execute(&outbox.created_at_index_statement())
            .await
            .unwrap();
        Self {
            db,
            outbox,
            _dir: dir,
        }
    }

    pub async fn drop_table(&self) {
        let statement = Table::drop()
            .table(Alias::new(self.outbox.table()))
            .if_exists()
            .to_owned();
        self.db.execute(&statement).await.unwrap();
    }

    pub async fn row_count(&self) -> usize {
        self.outbox.fetch(&self.db, 1_000_000).await.unwrap().len()
    }

    /// Writes `events` in one committed transaction, as a service would.
    pub async fn write(&self, events: &[Event]) {
        let txn = self.db.begin().await.unwrap();
        for event in events {
            self.outbox.insert(&txn, event).await.unwrap();
        }
        txn.commit().await.unwrap();
        self.outbox.wake_relay();
    }

    pub fn relay(&self, bus: Arc<dyn Bus>, config: RelayConfig) -> OutboxRelay {
        OutboxRelay::new(self.db.clone(), self.outbox.clone(), bus, config)
    }
}

/// Publishes through the inner bus, then hangs as if the process died before the delete.
pub struct CrashAfterPublish {
    inner: Arc<dyn Bus>,
    pub published: Notify,
    pub calls: AtomicUsize,
}

impl CrashAfterPublish {
    pub fn new(inner: Arc<dyn Bus>) -> Self {
        Self {
            inner,
            published: Notify::new(),
            calls: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Bus for CrashAfterPublish {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        self.inner.publish(events).await?;
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.published.notify_one();
        std::future::pending().await
    }

    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<SubscriptionHandle, BusError> {
        self.inner.subscribe(subscription, handler).await
    }

    async fn take_dead_letters(
        &self,
        group: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        self.inner.take_dead_letters(group, max).await
    }
}

/// File that serializes the tests that stop RabbitMQ against every other RabbitMQ test.
const BROKER_LOCK_PATH: &str = "/tmp/beehive-test-rabbitmq.lock";

/// Holds the broker lock: shared for ordinary tests, exclusive for a test that stops the broker.
pub struct BrokerLock {
    _file: std::fs::File,
}

impl BrokerLock {
    pub fn shared() -> Self {
        let file = Self::open();
        file.lock_shared().unwrap();
        Self { _file: file }
    }

    pub fn exclusive() -> Self {
        let file = Self::open();
        file.lock().unwrap();
        Self { _file: file }
    }

    fn open() -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(BROKER_LOCK_PATH)
            .unwrap()
    }
}
