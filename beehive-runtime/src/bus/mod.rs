//! Event bus with a transactional outbox.
//!
//! Services never publish straight to the bus from a request. They write an [`Event`] into an
//! outbox table in the same database transaction as the data that caused it
//! ([`Outbox::insert`]), and an [`OutboxRelay`] publishes committed rows and deletes them only
//! after the bus confirmed them. A broker outage therefore never fails a write: events wait in
//! the table and go out when the broker is back.
//!
//! Delivery is at least once. A relay that dies between the broker's confirm and the delete
//! publishes those rows again, and a consumer that dies before its ack sees the event again.
//! Each subscription therefore drops events whose id it already handled ([`SeenIds`], a bounded
//! in-memory set). That set is per process: a duplicate that reaches another instance of a
//! competing group is not caught there, so handlers must also be idempotent (indexing upserts
//! by message id, and push clients drop a message id they already show). A shared cache key
//! was not chosen because it would put the cache on the path of every event for a case that
//! only a crash produces.
//!
//! Routing follows AMQP topic exchanges: an event's topic (`message.push`, `message.index`,
//! `friend.event`) is its routing key, and a subscription binds patterns where `*` matches one
//! word and `#` matches zero or more. A [`Subscription`] names a consumer group:
//! - [`DeliveryMode::Competing`]: every subscriber of the group shares one durable queue, so the
//!   group as a whole handles each event once (search indexing).
//! - [`DeliveryMode::FanOut`]: every subscriber gets its own queue, so each instance handles
//!   every event (pushing to the clients connected to that instance).
//!
//! A handler that fails is retried up to [`RetryPolicy::max_attempts`] times in all. After the
//! last failure the event goes to the group's dead-letter queue ([`Bus::take_dead_letters`])
//! and the subscriber moves on to the next event.
//!
//! Implementations: [`InProcessBus`] for the embedded mode and [`RabbitBus`] (RabbitMQ through
//! lapin) for deployments.

mod dedup;
mod memory;
mod outbox;
mod rabbit;
mod topic;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use dedup::SeenIds;
pub use memory::InProcessBus;
pub use outbox::{
    Outbox, OutboxError, OutboxRelay, OutboxRow, RelayConfig, RelayHandle, TOPIC_SEPARATOR,
    fan_out_event_id, topic_column,
};
pub use rabbit::{RabbitBus, RabbitConfig};
pub use topic::topic_matches;

/// Default name of the topic exchange events are published to.
pub const DEFAULT_EXCHANGE: &str = "beehive.message";
/// Topic of events that push a new message to connected clients.
pub const TOPIC_MESSAGE_PUSH: &str = "message.push";
/// Topic of events that index a new or deleted message for search.
pub const TOPIC_MESSAGE_INDEX: &str = "message.index";
/// Topic kept for compatibility; persistence already happened when it is published.
pub const TOPIC_MESSAGE_PERSIST: &str = "message.persist";
/// Topic of friendship changes.
pub const TOPIC_FRIEND_EVENT: &str = "friend.event";

/// Longest topic the outbox column holds, in bytes.
pub const MAX_TOPIC_LEN: usize = 64;

/// An event as it travels from the outbox to consumers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id; consumers deduplicate on it.
    pub id: Uuid,
    /// Routing key, such as `message.push`.
    pub topic: String,
    pub payload: serde_json::Value,
}

impl Event {
    /// Creates an event with a fresh random id.
    pub fn new(topic: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            id: Uuid::new_v4(),
            topic: topic.into(),
            payload,
        }
    }
}

/// How the subscribers of one group share events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// All subscribers of the group share one durable queue; each event is handled once per
    /// group.
    Competing,
    /// Each subscriber has its own queue; each event is handled once per subscriber.
    FanOut,
}

/// What a subscriber wants to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Consumer group name, such as `search-index`; letters, digits, `.`, `-` and `_`.
    pub group: String,
    /// Topic patterns to bind (`message.index`, `message.*`, `#`).
    pub topics: Vec<String>,
    pub mode: DeliveryMode,
}

impl Subscription {
    /// A subscription whose group shares events among its subscribers.
    pub fn competing(group: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            group: group.into(),
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            mode: DeliveryMode::Competing,
        }
    }

    /// A subscription whose every subscriber receives every event.
    pub fn fan_out(group: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            group: group.into(),
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            mode: DeliveryMode::FanOut,
        }
    }

    fn validate(&self) -> Result<(), BusError> {
        let valid_group = !self.group.is_empty()
            && self.group.len() <= MAX_TOPIC_LEN
            && self
                .group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid_group {
            return Err(BusError::InvalidSubscription(format!(
                "group {:?} must be 1 to {MAX_TOPIC_LEN} letters, digits, '.', '-' or '_'",
                self.group
            )));
        }
        if self.topics.is_empty() {
            return Err(BusError::InvalidSubscription(format!(
                "group {:?} binds no topic",
                self.group
            )));
        }
        Ok(())
    }
}

/// Bounded retries before an event is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Handler calls per event, the first one included.
    pub max_attempts: u32,
    /// Pause before an in-process retry. RabbitMQ retries go to the back of the queue instead.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            delay: Duration::from_millis(100),
        }
    }
}

/// An event that exhausted its retries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub event: Event,
    /// Handler calls made before giving up.
    pub attempts: u32,
}

/// Error a handler returns to ask for a retry.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Consumes events of a subscription.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Handles one event. An error makes the bus retry it, then dead-letter it.
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

/// A bus failure.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subscription: {0}")]
    InvalidSubscription(String),
    #[error("invalid topic {0:?}: expected 1 to 64 bytes")]
    InvalidTopic(String),
    #[error("invalid bus configuration: {0}")]
    InvalidConfig(String),
    #[error("{operation} timed out")]
    Timeout { operation: &'static str },
    #[error("the broker rejected event {event_id}")]
    Rejected { event_id: Uuid },
    #[error("RabbitMQ operation `{operation}` failed")]
    Amqp {
        operation: &'static str,
        #[source]
        source: lapin::Error,
    },
    #[error("encoding event {event_id} failed")]
    Encode {
        event_id: Uuid,
        #[source]
        source: serde_json::Error,
    },
    #[error("the bus is shut down")]
    Closed,
}

/// Publishes events and delivers them to subscriptions.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes events in order and returns once the bus has accepted all of them (for
    /// RabbitMQ: once the broker confirmed each one). An error means some may not have been
    /// accepted; publishing them again is safe because consumers deduplicate.
    async fn publish(&self, events: &[Event]) -> Result<(), BusError>;

    /// Starts delivering matching events to `handler` until the returned handle is stopped or
    /// dropped. Events published after this call returns reach the subscription.
    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<SubscriptionHandle, BusError>;

    /// Removes and returns up to `max` dead-lettered events of a consumer group, oldest first.
    async fn take_dead_letters(&self, group: &str, max: usize)
    -> Result<Vec<DeadLetter>, BusError>;
}

/// A running subscription. Dropping it stops delivery; [`SubscriptionHandle::stop`] also waits
/// for the event in progress to finish.
#[derive(Debug)]
pub struct SubscriptionHandle {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SubscriptionHandle {
    fn new(cancel: CancellationToken, task: JoinHandle<()>) -> Self {
        Self {
            cancel,
            task: Some(task),
        }
    }

    /// Stops delivery and waits for the consumer task to end.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
            && err.is_panic()
        {
            tracing::error!(error = %err, "a subscription task panicked");
        }
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn validate_topic(topic: &str) -> Result<(), BusError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(BusError::InvalidTopic(topic.to_owned()));
    }
    Ok(())
}
