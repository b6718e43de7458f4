//! One conformance suite for every bus: the in-process bus always, RabbitMQ when
//! `BEEHIVE_TEST_AMQP_URL` is set.

mod bus_support;

use std::time::Duration;

use beehive_runtime::bus::{BusError, Event, Subscription};
use beehive_runtime::testing::{AMQP_URL_VAR, backend_url};
use bus_support::{MAX_ATTEMPTS, Recorder, TestBus, events, ids, sorted};

/// Competing subscribers share a group's events; fan-out subscribers each get all of them.
async fn groups_route_by_mode(bus: &TestBus) {
    let index_a = Recorder::new();
    let index_b = Recorder::new();
    let push_a = Recorder::new();
    let push_b = Recorder::new();
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
    let _push_a = bus
        .subscribe(
            Subscription::fan_out("push", &["message.push"]),
            push_a.clone(),
        )
        .await;
    let _push_b = bus
        .subscribe(
            Subscription::fan_out("push", &["message.push"]),
            push_b.clone(),
        )
        .await;

    let index_events = events("message.index", 40);
    let push_events = events("message.push", 25);
    let friend_events = events("friend.event", 5);
    bus.publish(&index_events).await.unwrap();
    bus.publish(&push_events).await.unwrap();
    bus.publish(&friend_events).await.unwrap();

    let expected_index = sorted(ids(&index_events));
    let expected_push = sorted(ids(&push_events));
    let index_b_ref = index_b.clone();
    index_a
        .wait_for("the index group to handle every event", |a| {
            a.handled_ids().len() + index_b_ref.handled_ids().len() >= expected_index.len()
        })
        .await;
    push_a
        .wait_for("push subscriber a", |r| r.handled_ids().len() >= 25)
        .await;
    push_b
        .wait_for("push subscriber b", |r| r.handled_ids().len() >= 25)
        .await;
    // Give stray duplicates or misrouted events time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut index_handled = index_a.handled_ids();
    index_handled.extend(index_b.handled_ids());
    assert_eq!(sorted(index_handled), expected_index);
    assert_eq!(sorted(push_a.handled_ids()), expected_push);
    assert_eq!(sorted(push_b.handled_ids()), expected_push);
    for event in index_a.handled().iter().chain(&push_a.handled()) {
        assert_ne!(event.topic, "friend.event");
    }
    assert_eq!(
        push_a.handled()[0].payload,
        serde_json::json!({ "index": 0 })
    );
}

/// A topic pattern with `#` receives every matching topic, in publish order.
async fn patterns_match_topics(bus: &TestBus) {
    let all = Recorder::new();
    let _all = bus
        .subscribe(Subscription::competing("all", &["message.#"]), all.clone())
        .await;

    let mut published = events("message.push", 3);
    published.extend(events("message.index", 3));
    published.extend(events("friend.event", 2));
    bus.publish(&published).await.unwrap();

    all.wait_for("six message events", |r| r.handled_ids().len() >= 6)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(all.handled_ids(), ids(&published[..6]));
}

/// Copies of one event id reach the handler once.
async fn duplicates_are_dropped(bus: &TestBus) {
    let recorder = Recorder::new();
    let _handle = bus
        .subscribe(
            Subscription::competing("dedup", &["message.index"]),
            recorder.clone(),
        )
        .await;

    let event = Event::new("message.index", serde_json::json!({ "message_id": 7 }));
    let marker = Event::new("message.index", serde_json::json!({ "marker": true }));
    bus.publish(&[event.clone(), event.clone()]).await.unwrap();
    bus.publish(&[event.clone(), marker.clone()]).await.unwrap();

    recorder
        .wait_for("the marker event", |r| r.handled_ids().contains(&marker.id))
        .await;
    assert_eq!(recorder.handled_ids(), vec![event.id, marker.id]);
    assert_eq!(recorder.calls(event.id), 1);
}

/// A handler that always fails on one event dead-letters it after the allowed attempts and
/// handles the rest.
async fn poison_event_is_dead_lettered(bus: &TestBus) {
    let recorder = Recorder::new();
    let published = events("message.index", 10);
    let poison = published[3].clone();
    recorder.poison(poison.id);
    let _handle = bus
        .subscribe(
            Subscription::competing("poison", &["message.index"]),
            recorder.clone(),
        )
        .await;

    bus.publish(&published).await.unwrap();

    recorder
        .wait_for("nine healthy events", |r| r.handled_ids().len() >= 9)
        .await;
    let deadline = tokio::time::Instant::now() + bus_support::DELIVERY_TIMEOUT;
    let mut dead = Vec::new();
    while dead.is_empty() && tokio::time::Instant::now() < deadline {
        dead = bus.dead_letters("poison").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut healthy = ids(&published);
    healthy.retain(|id| *id != poison.id);
    assert_eq!(sorted(recorder.handled_ids()), sorted(healthy));
    assert_eq!(recorder.calls(poison.id), MAX_ATTEMPTS);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].event, poison);
    assert_eq!(dead[0].attempts, MAX_ATTEMPTS);
    assert_eq!(bus.dead_letters("poison").await, Vec::new());
}

/// Bad subscriptions and topics are rejected before anything is declared.
async fn invalid_input_is_rejected(bus: &TestBus) {
    let recorder = Recorder::new();
    for subscription in [
        Subscription::competing("", &["message.index"]),
        Subscription::competing("bad group", &["message.index"]),
        Subscription::competing("../etc", &["message.index"]),
        Subscription::competing("no-topics", &[]),
    ] {
        let result = bus
            .bus
            .subscribe(subscription.clone(), recorder.clone())
            .await;
        assert!(
            matches!(result, Err(BusError::InvalidSubscription(_))),
            "{subscription:?} was accepted"
        );
    }

    let long_topic = Event::new("t".repeat(65), serde_json::Value::Null);
    let result = bus.publish(&[long_topic]).await;
    assert!(
        matches!(result, Err(BusError::InvalidTopic(_))),
        "{result:?}"
    );
    let result = bus
        .publish(&[Event::new("", serde_json::Value::Null)])
        .await;
    assert!(
        matches!(result, Err(BusError::InvalidTopic(_))),
        "{result:?}"
    );
}

macro_rules! conformance_tests {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let bus = TestBus::in_process();
                    super::$case(&bus).await;
                }
            )*
        }

        mod rabbitmq {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(url) = backend_url(AMQP_URL_VAR) else {
                        return;
                    };
                    let _lock = bus_support::BrokerLock::shared();
                    let bus = TestBus::rabbit(&url);
                    super::$case(&bus).await;
                                }
            )*
        }
    };
}

conformance_tests!(
    groups_route_by_mode,
    patterns_match_topics,
    duplicates_are_dropped,
    poison_event_is_dead_lettered,
    invalid_input_is_rejected,
);
