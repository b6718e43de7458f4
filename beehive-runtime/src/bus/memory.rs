//! [`Bus`] inside one process, for the embedded mode.
//!
//! Queues are unbounded in-memory channels. A competing group's queue is created by its first
//! subscriber and kept when subscribers leave, like a durable queue, so events published while
//! the group has no subscriber wait for the next one. Events that match no queue are dropped,
//! as a RabbitMQ exchange drops unroutable messages. Nothing survives a restart: the outbox
//! table is what makes events durable.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    Bus, BusError, DeadLetter, DeliveryMode, Event, EventHandler, RetryPolicy, SeenIds,
    Subscription, SubscriptionHandle, topic_matches, validate_topic,
};

type SharedReceiver = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>>;

/// An in-process topic bus with competing and fan-out consumer groups.
#[derive(Debug, Clone, Default)]
pub struct InProcessBus {
    inner: Arc<Inner>,
    retry: RetryPolicy,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queues: HashMap<String, Queue>,
    dead_letters: HashMap<String, VecDeque<DeadLetter>>,
}

#[derive(Debug)]
struct Queue {
    patterns: Vec<String>,
    sender: mpsc::UnboundedSender<Event>,
    receiver: SharedReceiver,
    seen: Arc<SeenIds>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl InProcessBus {
    pub fn new(retry: RetryPolicy) -> Self {
        Self {
            inner: Arc::default(),
            retry,
        }
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        for event in events {
            validate_topic(&event.topic)?;
        }
        let state = self.inner.state();
        for event in events {
            for queue in state.queues.values() {
                if queue
                    .patterns
                    .iter()
                    .any(|pattern| topic_matches(pattern, &event.topic))
                {
                    // A send fails only when every receiver is gone, which a queue in the map
                    // never is: it owns one of the receivers.
                    let _ = queue.sender.send(event.clone());
                }
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<SubscriptionHandle, BusError> {
        subscription.validate()?;
        let key = match subscription.mode {
            DeliveryMode::Competing => format!("competing/{}", subscription.group),
            DeliveryMode::FanOut => format!("fan-out/{}/{}", subscription.group, Uuid::new_v4()),
        };

        let (receiver, seen) = {
            let mut state = self.inner.state();
            let queue = state.queues.entry(key.clone()).or_insert_with(|| {
                let (sender, receiver) = mpsc::unbounded_channel();
                Queue {
                    patterns: Vec::new(),
                    sender,
                    receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
                    seen: Arc::new(SeenIds::default()),
                }
            });
            for topic in &subscription.topics {
                if !queue.patterns.contains(topic) {
                    queue.patterns.push(topic.clone());
                }
            }
            (Arc::clone(&queue.receiver), Arc::clone(&queue.seen))
        };

        let cancel = CancellationToken::new();
        let worker = Worker {
            inner: Arc::clone(&self.inner),
            retry: self.retry,
            group: subscription.group.clone(),
            handler,
            seen,
        };
        let task = tokio::spawn(worker.run(
            receiver,
            cancel.clone(),
            (subscription.mode == DeliveryMode::FanOut).then_some(key),
        ));
        tracing::debug!(group = %subscription.group, mode = ?subscription.mode, "subscribed");
        Ok(SubscriptionHandle::new(cancel, task))
    }

    async fn take_dead_letters(
        &self,
        group: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let mut state = self.inner.state();
        let Some(queue) = state.dead_letters.get_mut(group) else {
            return Ok(Vec::new());
        };
        let count = max.min(queue.len());
        Ok(queue.drain(..count).collect())
    }
}

struct Worker {
    inner: Arc<Inner>,
    retry: RetryPolicy,
    group: String,
    handler: Arc<dyn EventHandler>,
    seen: Arc<SeenIds>,
}

impl Worker {
    /// Delivers events until cancelled; a fan-out queue (`own_queue`) is removed at the end.
    async fn run(
        self,
        receiver: SharedReceiver,
        cancel: CancellationToken,
        own_queue: Option<String>,
    ) {
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => None,
                event = async { receiver.lock().await.recv().await } => event,
            };
            let Some(event) = next else {
                break;
            };
            self.deliver(event).await;
        }
        if let Some(key) = own_queue {
            self.inner.state().queues.remove(&key);
        }
    }

    async fn deliver(&self, event: Event) {
        if !self.seen.try_claim(event.id) {
            tracing::debug!(group = %self.group, event_id = %event.id, "dropped a duplicate event");
            return;
        }

        let max_attempts = self.retry.max_attempts.max(1);
        for attempt in 1..=max_attempts {
            match self.handler.handle(&event).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(
                        group = %self.group,
                        event_id = %event.id,
                        topic = %event.topic,
                        attempt,
                        max_attempts,
                        error = %err,
                        "event handler failed"
                    );
                    if attempt < max_attempts {
                        tokio::time::sleep(self.retry.delay).await;
                    }
                }
            }
        }

        self.seen.release(event.id);
        tracing::error!(
            group = %self.group,
            event_id = %event.id,
            topic = %event.topic,
            "event dead-lettered after its last attempt"
        );
        self.inner
            .state()
            .dead_letters
            .entry(self.group.clone())
            .or_default()
            .push_back(DeadLetter {
                event,
                attempts: max_attempts,
            });
    }
}
