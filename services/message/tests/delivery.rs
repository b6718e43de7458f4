//! Events of sent messages reach the index and push consumers exactly once after
//! deduplication: in process on SQLite, and through RabbitMQ on PostgreSQL + Redis while the
//! broker is down.
//!
//! The outage test stops RabbitMQ's application with `rabbitmqctl stop_app` and always starts
//! it again, even when the test fails. It holds the broker lock file that the runtime's bus
//! tests use, so no other broker test runs meanwhile.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use beehive_generated::pb::chat::CreateConversationRequest;
use beehive_generated::pb::message::SendMessageRequest;
use beehive_runtime::bus::{
    Bus, Event, EventHandler, HandlerError, InProcessBus, RabbitBus, RabbitConfig, RetryPolicy,
    Subscription, SubscriptionHandle, TOPIC_MESSAGE_INDEX, TOPIC_MESSAGE_PUSH,
};
use support::{Backends, Env};

const ALICE: i64 = 1;
const BOB: i64 = 2;
/// Lock file shared with the runtime's RabbitMQ tests.
const BROKER_LOCK_PATH: &str = "/tmp/beehive-test-rabbitmq.lock";
/// Maximum wait for every event to arrive after the broker is back.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

/// Records the message id of every delivery, duplicates included.
#[derive(Default)]
struct Recorder {
    deliveries: Mutex<Vec<i64>>,
}

impl Recorder {
    fn deliveries(&self) -> Vec<i64> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Message ids after deduplication, as a consumer keeps them.
    fn distinct(&self) -> BTreeSet<i64> {
        self.deliveries().into_iter().collect()
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let id = event.payload["message_id"]
            .as_i64()
            .ok_or("payload without message_id")?;
        self.deliveries.lock().unwrap().push(id);
        Ok(())
    }
}

struct Consumers {
    index: Arc<Recorder>,
    push: Arc<Recorder>,
    _handles: Vec<SubscriptionHandle>,
}

async fn subscribe(bus: &Arc<dyn Bus>, label: &str) -> Consumers {
    let index = Arc::new(Recorder::default());
    let push = Arc::new(Recorder::default());
    let handles = vec![
        bus.subscribe(
            Subscription::competing(format!("{label}-index"), &[TOPIC_MESSAGE_INDEX]),
            index.clone(),
        )
        .await
        .unwrap(),
        bus.subscribe(
            Subscription::fan_out(format!("{label}-push"), &[TOPIC_MESSAGE_PUSH]),
            push.clone(),
        )
        .await
        .unwrap(),
    ];
    Consumers {
        index,
        push,
        _handles: handles,
    }
}

async fn chat(env: &Env) -> i64 {
    env.friends.befriend(ALICE, BOB);
    env.chat
        .create_conversation(env.as_user(
            ALICE,
            CreateConversationRequest {
                r#type: 1,
                owner_id: ALICE,
                member_ids: vec![BOB],
                ..CreateConversationRequest::default()
            },
        ))
        .await
        .unwrap()
        .conversation_id
}

async fn send_many(env: &Env, conversation_id: i64, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let request = SendMessageRequest {
            conversation_id,
            sender_id: ALICE,
            content_type: 1,
            content: format!("message {n}"),
            ..SendMessageRequest::default()
        };
        ids.push(env.clients().send(request).await.unwrap());
    }
    ids
}

/// Waits until both consumers saw every id in `sent`.
async fn wait_for_all(consumers: &Consumers, sent: &BTreeSet<i64>) {
    let started = Instant::now();
    while consumers.index.distinct() != *sent || consumers.push.distinct() != *sent {
        assert!(
            started.elapsed() < DELIVERY_TIMEOUT,
            "after {DELIVERY_TIMEOUT:?}: index saw {} of {}, push saw {}",
            consumers.index.distinct().len(),
            sent.len(),
            consumers.push.distinct().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_exactly_once(recorder: &Recorder, sent: &BTreeSet<i64>, consumer: &str) {
    assert_eq!(recorder.distinct(), *sent, "{consumer}");
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for id in recorder.deliveries() {
        *counts.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    // The bus drops re-published events by their id, so repeats reach no handler.
    assert!(repeated.is_empty(), "{consumer} saw repeats: {repeated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_consumers_in_process() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(RetryPolicy::default()));
    let consumers = subscribe(&bus, "local").await;
    let env = Env::start(&Backends::default(), bus).await;
    let conversation_id = chat(&env).await;

    let sent: BTreeSet<i64> = send_many(&env, conversation_id, 30)
        .await
        .into_iter()
        .collect();
    wait_for_all(&consumers, &sent).await;
    assert_exactly_once(&consumers.index, &sent, "index");
    assert_exactly_once(&consumers.push, &sent, "push");
    env.shutdown().await;
}

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
            self.running = true;
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup"]);
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

fn broker_lock() -> std::fs::File {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(BROKER_LOCK_PATH)
        .unwrap();
    file.lock().unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_loses_no_event() {
    let Some(amqp_url) = beehive_runtime::testing::backend_url("BEEHIVE_TEST_AMQP_URL") else {
        return;
    };
    let Some(backends) = Backends::real() else {
        return;
    };
    let _lock = broker_lock();
    let label = format!("msgtest-{}", uuid::Uuid::new_v4().simple());
    let mut config = RabbitConfig::new(amqp_url);
    config.exchange = label.clone();
    config.reconnect_delay = Duration::from_millis(500);
    let bus: Arc<dyn Bus> = Arc::new(RabbitBus::new(config).unwrap());
    let consumers = subscribe(&bus, &label).await;
    let env = Env::start(&backends, bus).await;
    let conversation_id = chat(&env).await;

    let mut sent: BTreeSet<i64> = send_many(&env, conversation_id, 10)
        .await
        .into_iter()
        .collect();
    wait_for_all(&consumers, &sent).await;

    let mut broker = StoppedBroker::stop();
    sent.extend(send_many(&env, conversation_id, 20).await);
    assert_eq!(
        sent.len(),
        30,
        "every send succeeded while the broker was down"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.count("message_outbox").await > 0,
        "events wait in the outbox while the broker is down"
    );
    broker.start();

    wait_for_all(&consumers, &sent).await;
    assert_exactly_once(&consumers.index, &sent, "index");
    assert_eq!(consumers.push.distinct(), sent, "push");
    env.shutdown().await;
}
