//! The outbox path against a real RabbitMQ: a broker outage and a relay crash.
//!
//! The outage test stops the broker's application with `rabbitmqctl stop_app` and always
//! starts it again, even when the test fails. It holds the broker lock exclusively, so no other
//! RabbitMQ test of this crate runs meanwhile.

mod bus_support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use beehive_runtime::bus::{Bus, RelayConfig, Subscription};
use beehive_runtime::testing::{AMQP_URL_VAR, backend_url};
use bus_support::{BrokerLock, CrashAfterPublish, Recorder, TestBus, TestDb, events, ids, sorted};

/// Starts the broker application again when dropped, so a failing test never leaves it down.
struct StoppedBroker {
    running: bool,
}

impl StoppedBroker {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        Self { running: false }
    }

    fn start(&mut self) {
        if !self.running {
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup"]);
            self.running = true;
        }
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        self.start();
    }
}

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl").args(args).status();
    match status {
        Ok(status) if status.success() => {}
        other => panic!("rabbitmqctl {args:?} failed: {other:?}"),
    }
}

fn relay_config() -> RelayConfig {
    RelayConfig {
        batch_size: 64,
        poll_interval: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn broker_outage_delays_but_loses_nothing() {
    let Some(url) = backend_url(AMQP_URL_VAR) else {
        return;
    };
    let _lock = BrokerLock::exclusive();
    let bus = TestBus::rabbit(&url);
    let db = TestDb::sqlite().await;

    let index_a = Recorder::new();
    let index_b = Recorder::new();
    let audit = Recorder::new();
    let _index_a = bus
        .subscribe(
            Subscription::competing("index", &["message.index"]),
            index_a.clone(),
        )
        .await;
    let _index_b = bus
        .subscribe(
            Subscription::competing("index", &["message.index"]),
            index_b.clone(),
        )
        .await;
    let _audit = bus
        .subscribe(
            Subscription::competing("audit", &["message.*"]),
            audit.clone(),
        )
        .await;
    let relay = db.relay(Arc::clone(&bus.bus), relay_config()).spawn();

    let before = events("message.index", 10);
    db.write(&before).await;
    audit
        .wait_for("events sent before the outage", |r| {
            r.handled_ids().len() >= 10
        })
        .await;
    // The delete follows the broker's confirm, which can trail the delivery a little.
    let deadline = tokio::time::Instant::now() + bus_support::DELIVERY_TIMEOUT;
    while db.row_count().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox was never emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut broker = StoppedBroker::stop();
    let during = events("message.index", 50);
    for chunk in during.chunks(5) {
        db.write(chunk).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        db.row_count().await,
        50,
        "rows left the outbox while the broker was down"
    );
    broker.start();

    let mut expected = ids(&before);
    expected.extend(ids(&during));
    let expected = sorted(expected);
    let index_b_ref = index_b.clone();
    index_a
        .wait_for("the index group after the outage", |a| {
            a.handled_ids().len() + index_b_ref.handled_ids().len() >= expected.len()
        })
        .await;
    audit
        .wait_for("the audit group after the outage", |r| {
            r.handled_ids().len() >= 60
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut index_handled = index_a.handled_ids();
    index_handled.extend(index_b.handled_ids());
    assert_eq!(sorted(index_handled), expected);
    assert_eq!(sorted(audit.handled_ids()), expected);
    assert_eq!(db.row_count().await, 0);

    relay.stop().await;
}

#[tokio::test]
async fn relay_crash_before_delete_is_deduplicated() {
    let Some(url) = backend_url(AMQP_URL_VAR) else {
        return;
    };
    let _lock = BrokerLock::shared();
    let bus = TestBus::rabbit(&url);
    let db = TestDb::sqlite().await;
    let recorder = Recorder::new();
    let _subscription = bus
        .subscribe(
            Subscription::competing("index", &["message.index"]),
            recorder.clone(),
        )
        .await;
    let written = events("message.index", 20);
    db.write(&written).await;

    let crashing = Arc::new(CrashAfterPublish::new(Arc::clone(&bus.bus) as Arc<dyn Bus>));
    let handle = db.relay(crashing.clone(), relay_config()).spawn();
    crashing.published.notified().await;
    handle.abort();
    assert_eq!(
        db.row_count().await,
        20,
        "rows were deleted before the crash"
    );

    let relay = db.relay(Arc::clone(&bus.bus), relay_config());
    assert_eq!(relay.drain().await.unwrap(), 20);
    assert_eq!(db.row_count().await, 0);

    recorder
        .wait_for("20 events", |r| r.handled_ids().len() >= 20)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorder.handled_ids(), ids(&written));
    assert_eq!(crashing.calls.load(Ordering::SeqCst), 1);
}
