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
#[derive(Debug)]
struct Snapshot {
    endpoints: Vec<Arc<Endpoint>>,
    ring: ring::Ring,
    /// The discovery watch, marked as seen at the version these endpoints were built from, so
    /// `has_changed` on it returns whether discovery has published a newer set since.
    watch: EndpointWatch,
    /// Whether discovery had closed the watch when it was read: no newer set can follow.
    closed: bool,
}

impl Snapshot {
    /// Reads the current set from `watch` and builds the endpoints, reusing the connections
    /// and load of those in `previous` whose address stays.
    fn build(service: &str, mut watch: EndpointWatch, previous: &[Arc<Endpoint>]) -> Self {
        let addresses = watch.borrow_and_update().clone();
        let closed = watch.has_changed().is_err();
        let mut existing: HashMap<&str, &Arc<Endpoint>> = previous
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
                        tracing::warn!(%service, %address, error = %err, "skipped an invalid endpoint address");
                    }
                },
            }
        }
        let unchanged = existing.is_empty() && endpoints.len() == previous.len();
        if !unchanged {
            tracing::info!(%service, endpoints = ?addresses, "endpoint set changed");
        }
        let ring = ring::Ring::new(&endpoints);
        Self {
            endpoints,
            ring,
            watch,
            closed,
        }
    }

    /// Returns whether discovery has published a set newer than this snapshot. A closed watch
    /// counts as newer once, so the last set sent before closing is read.
    fn is_stale(&self) -> bool {
        match self.watch.has_changed() {
            Ok(changed) => changed,
            Err(_) => !self.closed,
        }
    }
}

#[derive(Debug)]
struct Shared {
    service: String,
    policy: BalancerKind,
    /// Held while a stale snapshot is replaced, so each discovery change is applied once and
    /// callers that find the snapshot stale wait for the new one.
    rebuild: Mutex<()>,
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
    /// Balances calls to `service` over the endpoints `watch` reports, with `policy`. Must be
    /// called inside a Tokio runtime.
    pub fn new(
        service: &str,
        watch: EndpointWatch,
        policy: BalancerKind,
        breaker: BreakerConfig,
    ) -> Self {
        let snapshot = Snapshot::build(service, watch, &[]);
        let shared = Shared {
            service: service.to_owned(),
            policy,
            rebuild: Mutex::new(()),
            snapshot: RwLock::new(Arc::new(snapshot)),
            next: AtomicUsize::new(0),
            breaker: Breaker::new(breaker),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Returns the endpoints in use now.
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.current().endpoints.clone()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.shared
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Returns a snapshot at least as new as the set discovery had published when this was
    /// called. While nothing changed this costs a read lock and an atomic load. After a change
    /// the first caller rebuilds the snapshot and the others wait for it, because a caller that
    /// went on with the old snapshot could find no instances while discovery lists some.
    fn current(&self) -> Arc<Snapshot> {
        let snapshot = self.snapshot();
        if !snapshot.is_stale() {
            return snapshot;
        }
        // The rebuild only creates lazily connected channels, so blocking on this lock is
        // short even inside the runtime.
        let _rebuilding = self
            .shared
            .rebuild
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = self.snapshot();
        if !snapshot.is_stale() {
            // Another caller rebuilt it while this one waited.
            return snapshot;
        }
        let rebuilt = Arc::new(Snapshot::build(
            &self.shared.service,
            snapshot.watch.clone(),
            &snapshot.endpoints,
        ));
        *self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&rebuilt);
        rebuilt
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
        let shared = self.shared.clone();
        let snapshot = self.current();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Barrier;

    use super::*;
    use crate::discovery::{Discovery, StaticDiscovery};

    const CALLERS: usize = 8;
    const ROUNDS: usize = 200;
    const ADDRESS: &str = "127.0.0.1:9";

    /// Registers `ADDRESS` in a balancer that started empty, then releases `CALLERS` threads at
    /// once, each running `lookup`, and returns the addresses each of them found.
    fn concurrent_lookups(
        runtime: &tokio::runtime::Runtime,
        lookup: fn(&Balanced) -> Vec<String>,
    ) -> Vec<Vec<String>> {
        let _entered = runtime.enter();
        let discovery = StaticDiscovery::empty();
        let balanced = Balanced::new(
            "chat",
            discovery.watch("chat"),
            BalancerKind::P2c,
            BreakerConfig::default(),
        );
        assert!(balanced.endpoints().is_empty());
        discovery.set("chat", [ADDRESS.to_owned()]);

        let start = Barrier::new(CALLERS);
        std::thread::scope(|scope| {
            let callers: Vec<_> = (0..CALLERS)
                .map(|_| {
                    let balanced = balanced.clone();
                    let start = &start;
                    scope.spawn(move || {
                        let _entered = runtime.enter();
                        start.wait();
                        lookup(&balanced)
                    })
                })
                .collect();
            callers
                .into_iter()
                .map(|caller| caller.join().unwrap_or_else(|_| panic!("caller panicked")))
                .collect()
        })
    }

    fn assert_all_found(lookup: fn(&Balanced) -> Vec<String>) {
        let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|err| panic!("{err}"));
        for round in 0..ROUNDS {
            let found = concurrent_lookups(&runtime, lookup);
            assert_eq!(found.len(), CALLERS, "round {round}");
            for (caller, addresses) in found.iter().enumerate() {
                assert_eq!(
                    addresses,
                    &vec![ADDRESS.to_owned()],
                    "round {round}, caller {caller}"
                );
            }
        }
    }

    fn addresses(endpoints: &[Arc<Endpoint>]) -> Vec<String> {
        endpoints
            .iter()
            .map(|endpoint| endpoint.address().to_owned())
            .collect()
    }

    #[test]
    fn concurrent_endpoints_see_new_instance() {
        assert_all_found(|balanced| addresses(&balanced.endpoints()));
    }

    #[test]
    fn concurrent_picks_see_new_instance() {
        // The same lookup `call` makes before sending.
        assert_all_found(|balanced| {
            let snapshot = balanced.current();
            balanced
                .pick(&snapshot, None)
                .map(|endpoint| endpoint.address().to_owned())
                .into_iter()
                .collect()
        });
    }

    #[tokio::test]
    async fn change_keeps_remaining_endpoints() {
        let discovery = StaticDiscovery::empty();
        discovery.set(
            "chat",
            ["127.0.0.1:9".to_owned(), "127.0.0.1:10".to_owned()],
        );
        let balanced = Balanced::new(
            "chat",
            discovery.watch("chat"),
            BalancerKind::RoundRobin,
            BreakerConfig::default(),
        );
        let before = balanced.endpoints();
        assert_eq!(addresses(&before), ["127.0.0.1:10", "127.0.0.1:9"]);
        let unchanged = balanced.current();
        assert!(Arc::ptr_eq(&unchanged, &balanced.current()));

        discovery.set(
            "chat",
            ["127.0.0.1:9".to_owned(), "127.0.0.1:11".to_owned()],
        );
        let after = balanced.endpoints();
        assert_eq!(addresses(&after), ["127.0.0.1:11", "127.0.0.1:9"]);
        assert!(Arc::ptr_eq(&before[1], &after[1]));
        assert!(!Arc::ptr_eq(&unchanged, &balanced.current()));
    }

    #[tokio::test]
    async fn closed_watch_keeps_last_set() {
        let (sender, watch) = tokio::sync::watch::channel(crate::discovery::Endpoints::default());
        let balanced = Balanced::new("chat", watch, BalancerKind::P2c, BreakerConfig::default());
        assert!(balanced.endpoints().is_empty());

        sender.send_replace(Arc::new(BTreeSet::from([ADDRESS.to_owned()])));
        drop(sender);
        assert_eq!(addresses(&balanced.endpoints()), [ADDRESS]);
        // The set read after closing is final, so later calls reuse that snapshot.
        let last = balanced.current();
        assert!(!last.is_stale());
        assert!(Arc::ptr_eq(&last, &balanced.current()));
    }
}
