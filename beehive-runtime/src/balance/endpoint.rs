//! One instance of a service as the client sees it: its connection, load and health.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time after which a latency sample has lost about 63 % of its weight in the load estimate.
const DECAY: Duration = Duration::from_secs(10);
/// Latency assumed for an endpoint that has not responded yet.
const DEFAULT_RTT: Duration = Duration::from_millis(1);
/// Limit on establishing one connection; also bounds the reachability probe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// First and longest time an unreachable endpoint stays out of rotation.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Health {
    /// Peak-EWMA round-trip time in nanoseconds.
    rtt_ns: f64,
    updated: Instant,
    down_until: Option<Instant>,
    backoff: Duration,
}

/// One instance of a service; see the module documentation.
#[derive(Debug)]
pub struct Endpoint {
    address: String,
    channel: tonic::transport::Channel,
    pending: AtomicUsize,
    health: Mutex<Health>,
}

/// Marks one call in flight on an endpoint until dropped.
#[derive(Debug)]
pub(super) struct Pending(Arc<Endpoint>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Endpoint {
    /// Creates a lazily connected endpoint for `address` (`host:port`) and probes it in the
    /// background, so an instance that is down leaves rotation before the first call fails.
    /// Must be called inside a Tokio runtime.
    pub(super) fn connect(address: &str) -> Result<Arc<Self>, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy();
        let endpoint = Arc::new(Self {
            address: address.to_owned(),
            channel,
            pending: AtomicUsize::new(0),
            health: Mutex::new(Health {
                rtt_ns: DEFAULT_RTT.as_nanos() as f64,
                updated: Instant::now(),
                down_until: None,
                backoff: FIRST_BACKOFF,
            }),
        });
        tokio::spawn(probe(Arc::downgrade(&endpoint)));
        Ok(endpoint)
    }

    /// Returns the `host:port` this endpoint connects to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Calls in flight on this endpoint.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    pub(super) fn channel(&self) -> tonic::transport::Channel {
        self.channel.clone()
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the endpoint is in rotation: never failed, or its back-off has passed.
    pub fn is_available(&self, now: Instant) -> bool {
        self.health().down_until.is_none_or(|until| until <= now)
    }

    /// Returns the load used by power of two choices: the decayed peak-EWMA latency times the calls in
    /// flight plus one.
    pub fn load(&self, now: Instant) -> f64 {
        let health = self.health();
        let idle = now.saturating_duration_since(health.updated);
        let decayed = health.rtt_ns * (-idle.as_secs_f64() / DECAY.as_secs_f64()).exp();
        decayed * (self.pending() + 1) as f64
    }

    pub(super) fn start(self: &Arc<Self>) -> Pending {
        self.pending.fetch_add(1, Ordering::AcqRel);
        Pending(self.clone())
    }

    /// Records a finished call: its latency, and whether the instance was reachable.
    pub(super) fn finish(&self, pending: Pending, rtt: Duration, reachable: bool) {
        drop(pending);
        let now = Instant::now();
        let mut health = self.health();
        let sample = rtt.as_nanos() as f64;
        if sample > health.rtt_ns {
            health.rtt_ns = sample;
        } else {
            let elapsed = now.saturating_duration_since(health.updated);
            let weight = (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp();
            health.rtt_ns = health.rtt_ns * weight + sample * (1.0 - weight);
        }
        health.updated = now;
        if reachable {
            health.down_until = None;
            health.backoff = FIRST_BACKOFF;
        } else {
            mark_down(&mut health, now);
        }
    }

    fn mark_unreachable(&self) {
        mark_down(&mut self.health(), Instant::now());
    }
}

fn mark_down(health: &mut Health, now: Instant) {
    health.down_until = Some(now + health.backoff);
    health.backoff = (health.backoff * 2).min(MAX_BACKOFF);
}

/// Opens and closes one TCP connection to the endpoint; a failure takes it out of rotation.
async fn probe(endpoint: std::sync::Weak<Endpoint>) {
    let Some(address) = endpoint.upgrade().map(|endpoint| endpoint.address.clone()) else {
        return;
    };
    let reachable = matches!(
        tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address)).await,
        Ok(Ok(_))
    );
    if !reachable && let Some(endpoint) = endpoint.upgrade() {
        tracing::warn!(%address, "endpoint unreachable, taken out of rotation");
        endpoint.mark_unreachable();
    }
}
