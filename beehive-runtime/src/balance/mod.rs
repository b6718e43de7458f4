//! Client-side balancing over the endpoints discovery reports, with per-endpoint health, a
//! latency-aware load, the adaptive breaker, the per-call deadline and the client metrics.
//!
//! Policies (`services.<svc>.balancer`): power of two choices over a peak-EWMA load (default),
//! random, round robin, and consistent hashing on the `x-beehive-hash-key` metadata.
//!
//! NOTE: this is not tower's `p2c::Balance`. That balancer is not `Clone` (it needs a `Buffer`
//! task in front), and it counts a fast connection failure as a fast, attractive endpoint. Here
//! an endpoint whose connection fails is taken out of rotation for a growing back-off, and the
//! load is the same peak-EWMA measure tower's `PeakEwma` uses.

mod endpoint;
mod ring;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use rand::Rng;

pub use endpoint::Endpoint;

use crate::breaker::{Breaker, BreakerConfig, Outcome};
use crate::client::Body;
use crate::config::BalancerKind;
use crate::discovery::EndpointWatch;
use crate::error::BoxError;

/// Metadata key whose value consistent hashing maps to an instance (e.g. a conversation id).
pub const HASH_KEY: &str = "x-beehive-hash-key";

/// The endpoints of one service at one moment, with the hash ring built over them.
#[derive(Debug, Default)]
struct Snapshot {
    endpoints: Vec<Arc<Endpoint>>,
    ring: ring::Ring,
}

#[derive(Debug)]
struct Shared {
    service: String,
    policy: BalancerKind,
    watch: Mutex<EndpointWatch>,
    snapshot: RwLock<Arc<Snapshot>>,
    next: AtomicUsize,
    breaker: Breaker,
}

/// A cloneable tower service that sends each gRPC call to one instance of a service.
#[derive(Debug, Clone)]
pub struct Balanced {
    shared: Arc<Shared>,
}

impl Balanced {
    /// Balances calls to `service` over the endpoints `watch` reports, with `policy`.
    pub fn new(
        service: &str,
        watch: EndpointWatch,
        policy: BalancerKind,
        breaker: BreakerConfig,
    ) -> Self {
        let shared = Shared {
            service: service.to_owned(),
            policy,
            watch: Mutex::new(watch),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            next: AtomicUsize::new(0),
            breaker: Breaker::new(breaker),
        };
        let balanced = Self {
            shared: Arc::new(shared),
        };
        balanced.refresh(true);
        balanced
    }

    /// Returns the endpoints in use now.
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.refresh(false);
        self.snapshot().endpoints.clone()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.shared
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the snapshot when discovery reported a change, keeping the connections and load
    /// of endpoints that stay.
    fn refresh(&self, force: bool) {
        let Ok(mut watch) = self.shared.watch.try_lock() else {
            return;
        };
        if !force && !watch.has_changed().unwrap_or(false) {
            return;
        }
        let addresses = watch.borrow_and_update().clone();
        drop(watch);

        let current = self.snapshot();
        let mut existing: HashMap<&str, &Arc<Endpoint>> = current
            .endpoints
            .iter()
            .map(|endpoint| (endpoint.address(), endpoint))
            .collect();
        let mut endpoints = Vec::with_capacity(addresses.len());
        for address in addresses.iter() {
            match existing.remove(address.as_str()) {
                Some(endpoint) => endpoints.push(endpoint.clone()),
                None => match Endpoint::connect(address) {
                    Ok(endpoint) => endpoints.push(endpoint),
                    Err(err) => {
                        tracing::warn!(service = %self.shared.service, %address, error = %err, "skipped an invalid endpoint address");
                    }
                },
            }
        }
        let ring = ring::Ring::new(&endpoints);
        tracing::info!(
            service = %self.shared.service,
            endpoints = ?addresses,
            "endpoint set changed"
        );
        *self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Snapshot { endpoints, ring });
    }

    /// Chooses the endpoint for one call; `None` when the service has no endpoints.
    fn pick(&self, snapshot: &Snapshot, hash_key: Option<&str>) -> Option<Arc<Endpoint>> {
        let now = Instant::now();
        let healthy: Vec<&Arc<Endpoint>> = snapshot
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.is_available(now))
            .collect();
        // With every endpoint down, try them anyway: one may have come back.
        let candidates: Vec<&Arc<Endpoint>> = if healthy.is_empty() {
            snapshot.endpoints.iter().collect()
        } else {
            healthy
        };
        if candidates.is_empty() {
            return None;
        }
        let chosen = match (self.shared.policy, hash_key) {
            (BalancerKind::ConsistentHash, Some(key)) => snapshot
                .ring
                .lookup(key, |index| snapshot.endpoints[index].is_available(now))
                .map(|index| &snapshot.endpoints[index])
                .unwrap_or(candidates[0]),
            (BalancerKind::Random, _) => candidates[rand::rng().random_range(0..candidates.len())],
            (BalancerKind::RoundRobin, _) => {
                let turn = self.shared.next.fetch_add(1, Ordering::Relaxed);
                candidates[turn % candidates.len()]
            }
            (BalancerKind::P2c | BalancerKind::ConsistentHash, _) => p2c(&candidates, now),
        };
        Some(chosen.clone())
    }
}

/// Power of two choices: of two distinct random candidates, the one with the lower load.
fn p2c<'a>(candidates: &[&'a Arc<Endpoint>], now: Instant) -> &'a Arc<Endpoint> {
    if candidates.len() == 1 {
        return candidates[0];
    }
    let mut rng = rand::rng();
    let first = rng.random_range(0..candidates.len());
    let mut second = rng.random_range(0..candidates.len() - 1);
    if second >= first {
        second += 1;
    }
    let (a, b) = (candidates[first], candidates[second]);
    if a.load(now) <= b.load(now) { a } else { b }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send + 'static>>;

impl tower::Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.refresh(false);
        let shared = self.shared.clone();
        let snapshot = self.snapshot();
        let hash_key = request
            .headers()
            .get(HASH_KEY)
            .and_then(|value| value.to_str().ok());
        let endpoint = self.pick(&snapshot, hash_key);
        Box::pin(send(shared, endpoint, request))
    }
}

async fn send(
    shared: Arc<Shared>,
    endpoint: Option<Arc<Endpoint>>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    use tower::ServiceExt;

    let started = Instant::now();
    let method = request.uri().path().to_owned();
    let timeout = request
        .headers()
        .get(crate::layer::GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::layer::parse_grpc_timeout);

    let Some(endpoint) = endpoint else {
        let status = tonic::Status::unavailable(format!(
            "no instances of service `{}` are known",
            shared.service
        ));
        return Ok(finish_local(&method, started, status));
    };
    if !shared.breaker.allow() {
        let status = tonic::Status::unavailable(format!(
            "client throttled calls to service `{}`: too many recent failures",
            shared.service
        ));
        return Ok(finish_local(&method, started, status));
    }

    let guard = endpoint.start();
    let call = endpoint.channel().oneshot(request);
    let result = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, call).await.ok(),
        None => Some(call.await),
    };
    let elapsed = started.elapsed();
    let response = match result {
        Some(Ok(response)) => {
            endpoint.finish(guard, elapsed, true);
            response
        }
        // The channel may enforce `grpc-timeout` itself and fail the call as a transport error.
        Some(Err(_)) if timeout.is_some_and(|timeout| elapsed >= timeout) => {
            endpoint.finish(guard, elapsed, true);
            deadline_exceeded(&method)
        }
        Some(Err(err)) => {
            endpoint.finish(guard, elapsed, false);
            tracing::warn!(service = %shared.service, address = endpoint.address(), method, error = %err, "instance unreachable");
            tonic::Status::unavailable(format!(
                "instance {} of service `{}` is unreachable: {err}",
                endpoint.address(),
                shared.service
            ))
            .into_http()
        }
        None => {
            endpoint.finish(guard, elapsed, true);
            deadline_exceeded(&method)
        }
    };
    let code = response_code(&response);
    shared.breaker.record(Outcome::of_code(code));
    crate::observe::record_client_call(&method, code, elapsed);
    Ok(response)
}

fn deadline_exceeded(method: &str) -> http::Response<Body> {
    tonic::Status::deadline_exceeded(format!(
        "{method} did not finish within the caller's deadline"
    ))
    .into_http()
}

/// Records and returns a status produced on the client side, without a network call.
fn finish_local(method: &str, started: Instant, status: tonic::Status) -> http::Response<Body> {
    crate::observe::record_client_call(method, status.code(), started.elapsed());
    status.into_http()
}

/// The gRPC code of a response as far as its headers tell: errors come as trailers-only
/// responses with `grpc-status` in the headers; otherwise the call is counted as OK.
///
/// NOTE: a server-streaming call that fails after its first message reports its status only in
/// the trailers, which this does not read; it is counted as OK.
fn response_code<B>(response: &http::Response<B>) -> tonic::Code {
    match tonic::Status::from_header_map(response.headers()) {
        Some(status) => status.code(),
        None if response.status().is_success() => tonic::Code::Ok,
        None => tonic::Code::Unavailable,
    }
}
