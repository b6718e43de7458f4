//! The transactional outbox and its relay on SQLite, and on PostgreSQL and MySQL when their
//! URLs are set.

mod bus_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use beehive_runtime::bus::{
    Bus, BusError, DeadLetter, Event, EventHandler, InProcessBus, Outbox, OutboxError, RelayConfig,
    Subscription, SubscriptionHandle, fan_out_event_id,
};
use beehive_runtime::testing::{MYSQL_URL_VAR, POSTGRES_URL_VAR, backend_url};
use bus_support::{CrashAfterPublish, Recorder, TestDb, events, ids, retry_policy};
use sea_orm::TransactionTrait;

fn quick_relay() -> RelayConfig {
    RelayConfig {
        batch_size: 16,
        poll_interval: Duration::from_millis(100),
    }
}

async fn subscribe_all(bus: &Arc<dyn Bus>, recorder: Arc<Recorder>) -> SubscriptionHandle {
    bus.subscribe(Subscription::competing("outbox-test", &["#"]), recorder)
        .await
        .unwrap()
}

/// Rows commit and roll back with the caller's transaction.
async fn insert_follows_transaction(db: &TestDb) {
    let kept = Event::new(
        "message.push",
        serde_json::json!({ "message_id": 1, "text": "你好" }),
    );
    let discarded = Event::new("message.push", serde_json::json!({ "message_id": 2 }));

    let txn = db.db.begin().await.unwrap();
    db.outbox.insert(&txn, &discarded).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(db.row_count().await, 0);

    let txn = db.db.begin().await.unwrap();
    db.outbox.insert(&txn, &kept).await.unwrap();
    txn.commit().await.unwrap();

    let rows = db.outbox.fetch(&db.db, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].events, vec![kept.clone()]);
    assert_eq!(rows[0].attempts, 0);

    let duplicate = db.outbox.insert(&db.db, &kept).await;
    assert!(
        matches!(duplicate, Err(OutboxError::Database { .. })),
        "{duplicate:?}"
    );
    let bad_topic = Event::new("x".repeat(65), serde_json::Value::Null);
    assert!(matches!(
        db.outbox.insert(&db.db, &bad_topic).await,
        Err(OutboxError::InvalidTopic(_))
    ));
    assert_eq!(db.row_count().await, 1);
}

/// A fan-out row is one row that the relay publishes once per topic, each event with an id
/// derived from the row's. A bad topic list is rejected and writes nothing.
async fn fan_out_row_publishes_every_topic(db: &TestDb) {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(retry_policy()));
    let recorder = Recorder::new();
    let _subscription = subscribe_all(&bus, recorder.clone()).await;

    let row_id = uuid::Uuid::new_v4();
    let payload = serde_json::json!({ "message_id": 7, "content": "早上好" });
    let topics = ["message.push", "message.index"];
    db.outbox
        .insert_fan_out(&db.db, row_id, &topics, &payload)
        .await
        .unwrap();
    assert_eq!(db.row_count().await, 1);

    let expected: Vec<Event> = topics
        .iter()
        .map(|topic| Event {
            id: fan_out_event_id(row_id, topic),
            topic: (*topic).to_owned(),
            payload: payload.clone(),
        })
        .collect();
    assert_ne!(expected[0].id, expected[1].id);
    let rows = db.outbox.fetch(&db.db, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].events, expected);

    for bad in [
        vec![],
        vec!["message.push", ""],
        vec!["message push"],
        vec!["message.push", "x".repeat(60).leak()],
    ] {
        let rejected = db
            .outbox
            .insert_fan_out(&db.db, uuid::Uuid::new_v4(), &bad, &payload)
            .await;
        assert!(
            matches!(rejected, Err(OutboxError::InvalidTopic(_))),
            "{bad:?}: {rejected:?}"
        );
    }
    let spaced = Event::new("message push", serde_json::Value::Null);
    assert!(matches!(
        db.outbox.insert(&db.db, &spaced).await,
        Err(OutboxError::InvalidTopic(_))
    ));
    assert_eq!(db.row_count().await, 1);

    let relay = db.relay(Arc::clone(&bus), quick_relay());
    assert_eq!(relay.drain().await.unwrap(), 1);
    assert_eq!(db.row_count().await, 0);
    recorder
        .wait_for("2 events", |r| r.handled_ids().len() >= 2)
        .await;
    let mut handled = recorder.handled();
    handled.sort_by(|a, b| a.topic.cmp(&b.topic));
    let mut expected = expected;
    expected.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(handled, expected);
}

/// The relay publishes rows in id order and deletes them.
async fn relay_publishes_then_deletes(db: &TestDb) {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(retry_policy()));
    let recorder = Recorder::new();
    let _subscription = subscribe_all(&bus, recorder.clone()).await;
    let written = events("message.index", 40);
    db.write(&written).await;

    let relay = db.relay(Arc::clone(&bus), quick_relay());
    assert_eq!(relay.relay_batch().await.unwrap(), 16);
    assert_eq!(db.row_count().await, 24);
    assert_eq!(relay.drain().await.unwrap(), 24);
    assert_eq!(db.row_count().await, 0);

    recorder
        .wait_for("40 events", |r| r.handled_ids().len() >= 40)
        .await;
    assert_eq!(recorder.handled_ids(), ids(&written));
}

/// A failed publish keeps the rows and counts the attempt.
async fn failed_publish_keeps_rows(db: &TestDb) {
    let written = events("friend.event", 3);
    db.write(&written).await;

    let relay = db.relay(Arc::new(DownBus), quick_relay());
    let result = relay.relay_batch().await;
    assert!(matches!(result, Err(OutboxError::Publish(_))), "{result:?}");
    let _ = relay.relay_batch().await;

    let rows = db.outbox.fetch(&db.db, 10).await.unwrap();
    assert_eq!(
        rows.iter().map(|row| row.events[0].id).collect::<Vec<_>>(),
        ids(&written)
    );
    assert!(rows.iter().all(|row| row.attempts == 2), "{rows:?}");
}

/// A relay killed after the bus confirmed but before the delete loses nothing. The next
/// relay publishes the batch again, and the consumer drops the copies.
async fn killed_relay_loses_nothing(db: &TestDb) {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(retry_policy()));
    let recorder = Recorder::new();
    let _subscription = subscribe_all(&bus, recorder.clone()).await;
    let written = events("message.push", 10);
    db.write(&written).await;

    let crashing = Arc::new(CrashAfterPublish::new(Arc::clone(&bus)));
    let handle = db
        .relay(
            crashing.clone(),
            RelayConfig {
                batch_size: 100,
                ..quick_relay()
            },
        )
        .spawn();
    crashing.published.notified().await;
    handle.abort();
    assert_eq!(
        db.row_count().await,
        10,
        "rows were deleted before the crash"
    );

    let relay = db.relay(Arc::clone(&bus), quick_relay());
    assert_eq!(relay.drain().await.unwrap(), 10);
    assert_eq!(db.row_count().await, 0);

    recorder
        .wait_for("10 events", |r| r.handled_ids().len() >= 10)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.handled_ids(), ids(&written));
    assert_eq!(crashing.calls.load(Ordering::SeqCst), 1);
}

/// A wake-up after commit delivers long before the next poll.
async fn wake_up_skips_the_poll(db: &TestDb) {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(retry_policy()));
    let recorder = Recorder::new();
    let _subscription = subscribe_all(&bus, recorder.clone()).await;
    let relay = db
        .relay(
            Arc::clone(&bus),
            RelayConfig {
                batch_size: 16,
                poll_interval: Duration::from_secs(3_600),
            },
        )
        .spawn();
    // The relay's first drain runs at start; let it finish and wait.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let written = events("message.push", 1);
    db.write(&written).await;

    let delivered = tokio::time::timeout(
        Duration::from_secs(5),
        recorder.wait_for("the woken relay", |r| !r.handled_ids().is_empty()),
    )
    .await;
    assert!(delivered.is_ok(), "the relay did not wake up");
    relay.stop().await;
    assert_eq!(db.row_count().await, 0);
}

/// A bus whose broker is unreachable.
struct DownBus;

#[async_trait]
impl Bus for DownBus {
    async fn publish(&self, _events: &[Event]) -> Result<(), BusError> {
        Err(BusError::Timeout {
            operation: "connect",
        })
    }

    async fn subscribe(
        &self,
        _subscription: Subscription,
        _handler: Arc<dyn EventHandler>,
    ) -> Result<SubscriptionHandle, BusError> {
        Err(BusError::Closed)
    }

    async fn take_dead_letters(
        &self,
        _group: &str,
        _max: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        Ok(Vec::new())
    }
}

#[test]
fn table_names_are_checked() {
    for name in [
        "",
        "Outbox",
        "outbox;drop",
        "1outbox",
        "out box",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(Outbox::new(name), Err(OutboxError::InvalidTable(_))),
            "{name:?} was accepted"
        );
    }
    assert_eq!(
        Outbox::new("message_outbox").unwrap().table(),
        "message_outbox"
    );
}

macro_rules! outbox_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let db = TestDb::sqlite().await;
                    super::$case(&db).await;
                }
            )*
        }

        mod postgres {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(url) = backend_url(POSTGRES_URL_VAR) else {
                        return;
                    };
                    let db = TestDb::open(&url, None).await;
                    super::$case(&db).await;
                    db.drop_table().await;
                }
            )*
        }

        mod mysql {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(url) = backend_url(MYSQL_URL_VAR) else {
                        return;
                    };
                    let db = TestDb::open(&url, None).await;
                    super::$case(&db).await;
                    db.drop_table().await;
                }
            )*
        }
    };
}

outbox_tests!(
    fan_out_row_publishes_every_topic,
    insert_follows_transaction,
    relay_publishes_then_deletes,
    failed_publish_keeps_rows,
    killed_relay_loses_nothing,
    wake_up_skips_the_poll,
);
