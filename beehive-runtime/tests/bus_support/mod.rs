//! Helpers shared by the bus tests: recording handlers, waiting, RabbitMQ set-up and clean-up.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use beehive_runtime::bus::{
    Bus, BusError, DeadLetter, Event, EventHandler, HandlerError, InProcessBus, RabbitBus,
    RabbitConfig, RetryPolicy, Subscription, SubscriptionHandle,
};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use tokio::sync::Notify;
use uuid::Uuid;

/// Handler calls per event in the tests.
pub const MAX_ATTEMPTS: u32 = 3;
/// Longest wait for deliveries before a test fails.
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
    pub async fn clean_up(&self) {
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
