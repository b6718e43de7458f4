//! [`Bus`] on RabbitMQ through lapin.
//!
//! Topology, for an exchange named `X` (default `beehive.message`):
//! - `X`: durable topic exchange that events are published to, with their topic as routing key.
//! - `X.dead`: durable direct exchange for dead letters, routed by consumer group name.
//! - `X.<group>`: durable queue shared by a competing group.
//! - `X.<group>.<uuid>`: one queue per fan-out subscriber. It is durable, so it survives a
//!   broker restart. The broker deletes it 60 s after its subscriber went away (`x-expires`),
//!   and stopping the subscription deletes it at once.
//! - `X.dead.<group>`: durable dead-letter queue of a group; every queue above names `X.dead`
//!   as its dead-letter exchange and the group as its dead-letter routing key.
//!
//! Publishing waits for publisher confirms and marks messages persistent. Consumers ack after
//! their handler succeeded. A failed event is published again to the back of its queue with
//! the header `x-beehive-attempts` counting failed attempts, and after the last allowed attempt
//! it is rejected without requeue, which routes it to the dead-letter queue.
//!
//! Connections are not recovered in place: a publisher whose connection broke reconnects on
//! the next publish, and a consumer reconnects, declares its topology again and resumes after
//! a delay, until its subscription is stopped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Mutex, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Bus, BusError, DEFAULT_EXCHANGE, DeadLetter, DeliveryMode, Event, EventHandler, RetryPolicy,
    SeenIds, Subscription, SubscriptionHandle, validate_topic,
};

/// Header counting the failed handler attempts before the current delivery.
const ATTEMPTS_HEADER: &str = "x-beehive-attempts";
/// Longest accepted exchange name; derived queue names must stay under AMQP's 255 bytes.
const MAX_EXCHANGE_LEN: usize = 100;
/// Time allowed to connect, or to wait for one confirm, before the operation fails.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// AMQP delivery mode of messages written to disk.
const PERSISTENT: u8 = 2;
/// Reply code of a normal connection close.
const REPLY_SUCCESS: u16 = 200;

/// RabbitMQ settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitConfig {
    /// `amqp://user:pass@host:port/vhost` (the vhost `/` is written `%2f`).
    pub url: String,
    /// Topic exchange name; tests use a unique one so they can run in parallel.
    pub exchange: String,
    pub retry: RetryPolicy,
    /// Unacked deliveries a consumer may hold.
    pub prefetch: u16,
    /// Pause before a broken consumer connects again.
    pub reconnect_delay: Duration,
    /// Time after which the broker deletes a fan-out queue whose subscriber went away.
    pub fan_out_expiry: Duration,
}

impl RabbitConfig {
    /// Settings for `url` with the default exchange and limits.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: DEFAULT_EXCHANGE.to_owned(),
            retry: RetryPolicy::default(),
            prefetch: 32,
            reconnect_delay: Duration::from_secs(1),
            fan_out_expiry: Duration::from_secs(60),
        }
    }

    fn dead_letter_exchange(&self) -> String {
        format!("{}.dead", self.exchange)
    }

    fn dead_letter_queue(&self, group: &str) -> String {
        format!("{}.dead.{group}", self.exchange)
    }
}

/// A RabbitMQ-backed bus. Publishing uses one connection with a confirm-mode channel,
/// opened on first use; each subscription has a connection of its own.
pub struct RabbitBus {
    config: Arc<RabbitConfig>,
    publisher: Mutex<Option<Publisher>>,
}

impl std::fmt::Debug for RabbitBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password, so only the exchange is shown.
        f.debug_struct("RabbitBus")
            .field("exchange", &self.config.exchange)
            .finish_non_exhaustive()
    }
}

struct Publisher {
    connection: Connection,
    channel: Channel,
}

impl RabbitBus {
    /// Checks the settings; no connection is made until the first publish or subscribe.
    pub fn new(config: RabbitConfig) -> Result<Self, BusError> {
        let valid = !config.exchange.is_empty()
            && config.exchange.len() <= MAX_EXCHANGE_LEN
            && !config.exchange.starts_with("amq.");
        if !valid {
            return Err(BusError::InvalidConfig(format!(
                "exchange {:?} must be 1 to {MAX_EXCHANGE_LEN} bytes and must not start with \"amq.\"",
                config.exchange
            )));
        }
        Ok(Self {
            config: Arc::new(config),
            publisher: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &RabbitConfig {
        &self.config
    }

    /// Opens the publisher connection when there is none.
    async fn publisher_channel(&self, slot: &mut Option<Publisher>) -> Result<Channel, BusError> {
        if let Some(publisher) = slot.as_ref()
            && publisher.connection.status().connected()
            && publisher.channel.status().connected()
        {
            return Ok(publisher.channel.clone());
        }
        *slot = None;

        let connection = connect(&self.config.url).await?;
        let channel = create_channel(&connection).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp("confirm.select"))?;
        declare_exchanges(&channel, &self.config).await?;
        tracing::info!(exchange = %self.config.exchange, "RabbitMQ publisher connected");

        *slot = Some(Publisher {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    async fn publish_on(&self, channel: &Channel, events: &[Event]) -> Result<(), BusError> {
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let body = serde_json::to_vec(event).map_err(|source| BusError::Encode {
                event_id: event.id,
                source,
            })?;
            let properties = BasicProperties::default()
                .with_message_id(event.id.to_string().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(PERSISTENT);
            let confirm = channel
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    event.topic.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await
                .map_err(amqp("basic.publish"))?;
            confirms.push((event.id, confirm));
        }

        for (event_id, confirm) in confirms {
            let confirmation = tokio::time::timeout(OPERATION_TIMEOUT, confirm)
                .await
                .map_err(|_| BusError::Timeout {
                    operation: "publisher confirm",
                })?
                .map_err(amqp("publisher confirm"))?;
            if confirmation.is_nack() {
                return Err(BusError::Rejected { event_id });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Bus for RabbitBus {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        for event in events {
            validate_topic(&event.topic)?;
        }
        if events.is_empty() {
            return Ok(());
        }

        let mut slot = self.publisher.lock().await;
        let channel = self.publisher_channel(&mut slot).await?;
        let result = self.publish_on(&channel, events).await;
        if let Err(err) = &result {
            tracing::warn!(exchange = %self.config.exchange, count = events.len(), error = %err, "publishing to RabbitMQ failed; reconnecting on the next publish");
            if let Some(publisher) = slot.take() {
                let _ = publisher
                    .connection
                    .close(REPLY_SUCCESS, "publish failed".into())
                    .await;
            }
        }
        result
    }

    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<SubscriptionHandle, BusError> {
        subscription.validate()?;
        let queue = match subscription.mode {
            DeliveryMode::Competing => format!("{}.{}", self.config.exchange, subscription.group),
            DeliveryMode::FanOut => format!(
                "{}.{}.{}",
                self.config.exchange,
                subscription.group,
                Uuid::new_v4()
            ),
        };
        let consumer = Consumer {
            config: Arc::clone(&self.config),
            subscription,
            queue,
            handler,
            seen: SeenIds::default(),
        };

        let cancel = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(consumer.run(cancel.clone(), ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => Ok(SubscriptionHandle::new(cancel, task)),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(BusError::Closed),
        }
    }

    async fn take_dead_letters(
        &self,
        group: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let connection = connect(&self.config.url).await?;
        let result = self.take_dead_letters_on(&connection, group, max).await;
        let _ = connection.close(REPLY_SUCCESS, "done".into()).await;
        result
    }
}

impl RabbitBus {
    async fn take_dead_letters_on(
        &self,
        connection: &Connection,
        group: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let channel = create_channel(connection).await?;
        declare_exchanges(&channel, &self.config).await?;
        declare_dead_letter_queue(&channel, &self.config, group).await?;
        let queue = self.config.dead_letter_queue(group);

        let mut letters = Vec::new();
        while letters.len() < max {
            let Some(message) = channel
                .basic_get(queue.as_str().into(), BasicGetOptions::default())
                .await
                .map_err(amqp("basic.get"))?
            else {
                break;
            };
            let delivery = message.delivery;
            match serde_json::from_slice::<Event>(&delivery.data) {
                Ok(event) => letters.push(DeadLetter {
                    event,
                    attempts: failed_attempts(&delivery) + 1,
                }),
                Err(err) => {
                    tracing::warn!(queue = %queue, error = %err, "dropped an undecodable dead letter");
                }
            }
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(amqp("basic.ack"))?;
        }
        Ok(letters)
    }
}

/// One subscription's consumer task.
struct Consumer {
    config: Arc<RabbitConfig>,
    subscription: Subscription,
    queue: String,
    handler: Arc<dyn EventHandler>,
    seen: SeenIds,
}

/// An open consumer connection.
struct Session {
    connection: Connection,
    /// Channel the deliveries arrive on, also used to ack them.
    channel: Channel,
    /// Confirm-mode channel for publishing retries.
    retry_channel: Channel,
    deliveries: lapin::Consumer,
}

enum SessionEnd {
    Cancelled,
    Broken(String),
}

impl Consumer {
    async fn run(self, cancel: CancellationToken, ready: oneshot::Sender<Result<(), BusError>>) {
        let mut ready = Some(ready);
        let mut attempt: u32 = 0;
        loop {
            match self.open().await {
                Ok(session) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    } else {
                        tracing::info!(queue = %self.queue, "RabbitMQ consumer reconnected");
                    }
                    attempt = 0;
                    match self.consume(&session, &cancel).await {
                        SessionEnd::Cancelled => {
                            self.close(session).await;
                            break;
                        }
                        SessionEnd::Broken(reason) => {
                            tracing::warn!(queue = %self.queue, error = %reason, "RabbitMQ consumer lost its connection");
                            let _ = session
                                .connection
                                .close(REPLY_SUCCESS, "reconnecting".into())
                                .await;
                        }
                    }
                }
                Err(err) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(err));
                        return;
                    }
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(queue = %self.queue, attempt, error = %err, "connecting the RabbitMQ consumer failed; retrying");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(self.config.reconnect_delay) => {}
            }
        }
        tracing::debug!(queue = %self.queue, "RabbitMQ consumer stopped");
    }

    /// Connects, declares the topology and starts consuming.
    async fn open(&self) -> Result<Session, BusError> {
        let connection = connect(&self.config.url).await?;
        let channel = create_channel(&connection).await?;
        let retry_channel = create_channel(&connection).await?;
        retry_channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp("confirm.select"))?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(amqp("basic.qos"))?;

        declare_exchanges(&channel, &self.config).await?;
        declare_dead_letter_queue(&channel, &self.config, &self.subscription.group).await?;

        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.config.dead_letter_exchange().into()),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.subscription.group.as_str().into()),
        );
        if self.subscription.mode == DeliveryMode::FanOut {
            let expiry_ms =
                i64::try_from(self.config.fan_out_expiry.as_millis()).unwrap_or(i64::MAX);
            arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expiry_ms));
        }
        channel
            .queue_declare(
                self.queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await
            .map_err(amqp("queue.declare"))?;
        for topic in &self.subscription.topics {
            channel
                .queue_bind(
                    self.queue.as_str().into(),
                    self.config.exchange.as_str().into(),
                    topic.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(amqp("queue.bind"))?;
        }

        let deliveries = channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(amqp("basic.consume"))?;
        tracing::debug!(queue = %self.queue, group = %self.subscription.group, "RabbitMQ consumer started");
        Ok(Session {
            connection,
            channel,
            retry_channel,
            deliveries,
        })
    }

    async fn consume(&self, session: &Session, cancel: &CancellationToken) -> SessionEnd {
        let mut deliveries = session.deliveries.clone();
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => return SessionEnd::Cancelled,
                next = deliveries.next() => next,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(err)) => return SessionEnd::Broken(err.to_string()),
                None => return SessionEnd::Broken("the delivery stream ended".to_owned()),
            };
            if let Err(err) = self.process(session, delivery).await {
                return SessionEnd::Broken(err.to_string());
            }
        }
    }

    /// Handles one delivery and settles it: ack, retry or dead-letter.
    async fn process(&self, session: &Session, delivery: Delivery) -> Result<(), BusError> {
        let event: Event = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(err) => {
                tracing::error!(queue = %self.queue, error = %err, "dead-lettered an undecodable message");
                return reject(&delivery).await;
            }
        };
        if !self.seen.try_claim(event.id) {
            tracing::debug!(queue = %self.queue, event_id = %event.id, "dropped a duplicate event");
            return ack(&delivery).await;
        }

        let error = match self.handler.handle(&event).await {
            Ok(()) => return ack(&delivery).await,
            Err(err) => err,
        };
        self.seen.release(event.id);

        let attempts = failed_attempts(&delivery) + 1;
        let max_attempts = self.config.retry.max_attempts.max(1);
        if attempts >= max_attempts {
            tracing::error!(
                queue = %self.queue,
                event_id = %event.id,
                topic = %event.topic,
                attempt = attempts,
                error = %error,
                "event dead-lettered after its last attempt"
            );
            return reject(&delivery).await;
        }

        tracing::warn!(
            queue = %self.queue,
            event_id = %event.id,
            topic = %event.topic,
            attempt = attempts,
            max_attempts,
            error = %error,
            "event handler failed; retrying"
        );
        tokio::time::sleep(self.config.retry.delay).await;
        self.republish(session, &delivery, event.id, attempts)
            .await?;
        ack(&delivery).await
    }

    /// Publishes a copy of `delivery` to the back of this consumer's queue, with the failed
    /// attempts so far in its header, and waits for the broker's confirm.
    async fn republish(
        &self,
        session: &Session,
        delivery: &Delivery,
        event_id: Uuid,
        attempts: u32,
    ) -> Result<(), BusError> {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            ATTEMPTS_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(attempts)),
        );
        let properties = delivery.properties.clone().with_headers(headers);

        let confirm = session
            .retry_channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                &delivery.data,
                properties,
            )
            .await
            .map_err(amqp("basic.publish"))?;
        let confirmation = tokio::time::timeout(OPERATION_TIMEOUT, confirm)
            .await
            .map_err(|_| BusError::Timeout {
                operation: "publisher confirm",
            })?
            .map_err(amqp("publisher confirm"))?;
        if confirmation.is_nack() {
            return Err(BusError::Rejected { event_id });
        }
        Ok(())
    }

    /// Closes the session; a fan-out queue is deleted since nobody will read it again.
    async fn close(&self, session: Session) {
        if self.subscription.mode == DeliveryMode::FanOut
            && let Err(err) = session
                .channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
                .await
        {
            tracing::warn!(queue = %self.queue, error = %err, "deleting a fan-out queue failed; it expires on its own");
        }
        let _ = session
            .connection
            .close(REPLY_SUCCESS, "subscription stopped".into())
            .await;
    }
}

async fn connect(url: &str) -> Result<Connection, BusError> {
    tokio::time::timeout(
        OPERATION_TIMEOUT,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .map_err(|_| BusError::Timeout {
        operation: "connect",
    })?
    .map_err(amqp("connect"))
}

async fn create_channel(connection: &Connection) -> Result<Channel, BusError> {
    connection
        .create_channel()
        .await
        .map_err(amqp("channel.open"))
}

async fn declare_exchanges(channel: &Channel, config: &RabbitConfig) -> Result<(), BusError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(amqp("exchange.declare"))?;
    channel
        .exchange_declare(
            config.dead_letter_exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(amqp("exchange.declare"))
}

async fn declare_dead_letter_queue(
    channel: &Channel,
    config: &RabbitConfig,
    group: &str,
) -> Result<(), BusError> {
    let queue = config.dead_letter_queue(group);
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(amqp("queue.declare"))?;
    channel
        .queue_bind(
            queue.as_str().into(),
            config.dead_letter_exchange().into(),
            group.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("queue.bind"))
}

/// Reads the failed attempts recorded in a delivery's header (0 when absent).
fn failed_attempts(delivery: &Delivery) -> u32 {
    let key = ShortString::from(ATTEMPTS_HEADER);
    let value = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(&key).cloned());
    let count = match value {
        Some(AMQPValue::LongLongInt(n)) => n,
        Some(AMQPValue::LongInt(n)) => i64::from(n),
        Some(AMQPValue::LongUInt(n)) => i64::from(n),
        Some(AMQPValue::ShortInt(n)) => i64::from(n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(n),
        _ => 0,
    };
    u32::try_from(count.max(0)).unwrap_or(u32::MAX)
}

async fn ack(delivery: &Delivery) -> Result<(), BusError> {
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map(drop)
        .map_err(amqp("basic.ack"))
}

/// Rejects without requeue, which sends the message to the queue's dead-letter exchange.
async fn reject(delivery: &Delivery) -> Result<(), BusError> {
    delivery
        .acker
        .nack(BasicNackOptions {
            multiple: false,
            requeue: false,
        })
        .await
        .map(drop)
        .map_err(amqp("basic.nack"))
}

fn amqp(operation: &'static str) -> impl Fn(lapin::Error) -> BusError {
    move |source| BusError::Amqp { operation, source }
}
