//! Throughput and latency of a trivial RPC through Beehive's whole serving stack (load shedding,
//! context layer with JWT check, `run_unary` with access check, validation, deadline, logs and
//! metrics) against a bare tonic server answering the same RPC, with one client, the same
//! concurrency, in the same run.
//!
//! Run with `cargo bench -p beehive-runtime --bench layers`. Prints calls per second, p50 and
//! p99 of both, and the ratios. Rounds alternate between the two servers to even out drift.

#[path = "../tests/support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use beehive_runtime::client::{Body, ServiceChannel};
use beehive_runtime::server::ServerBuilder;
use beehive_runtime::{CallContext, Handle, ServiceError};
use futures::future::BoxFuture;
use support::{BareEchoServer, Ping, PingRpc, Pong, ping};

const CONCURRENCY: usize = 32;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 2;
const WARM_UP: Duration = Duration::from_secs(1);

struct Trivial;

impl Handle<PingRpc> for Trivial {
    async fn handle(&self, _ctx: CallContext, _request: Ping) -> Result<Pong, ServiceError> {
        Ok(Pong::default())
    }
}

/// The trivial logic behind the same tonic wrapping a generated adapter uses.
#[derive(Clone)]
struct TrivialServer(Arc<Trivial>);

impl tonic::server::NamedService for TrivialServer {
    const NAME: &'static str = support::SERVICE_NAME;
}

struct TrivialPing(Arc<Trivial>);

impl tonic::server::UnaryService<Ping> for TrivialPing {
    type Response = Pong;
    type Future = BoxFuture<'static, Result<tonic::Response<Pong>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<Ping>) -> Self::Future {
        let logic = self.0.clone();
        Box::pin(
            async move { beehive_runtime::rpc::run_unary::<PingRpc, _>(&*logic, request).await },
        )
    }
}

impl tower::Service<http::Request<Body>> for TrivialServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let logic = self.0.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(TrivialPing(logic), request).await)
        })
    }
}

#[derive(Debug, Default)]
struct Measured {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, fraction: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * fraction).round() as usize;
        self.latencies.get(index).copied().unwrap_or_default()
    }
}

async fn drive(address: SocketAddr, token: &str, length: Duration) -> Measured {
    let channel = match ServiceChannel::lazy(&format!("http://{address}")) {
        Ok(channel) => channel,
        Err(err) => panic!("{err}"),
    };
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let channel = channel.clone();
        let bearer: tonic::metadata::MetadataValue<_> = match format!("Bearer {token}").parse() {
            Ok(value) => value,
            Err(err) => panic!("{err}"),
        };
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < length {
                let mut request = tonic::Request::new(Ping::default());
                request
                    .metadata_mut()
                    .insert("authorization", bearer.clone());
                let sent = Instant::now();
                if let Err(status) = ping(channel.clone(), request).await {
                    panic!("call failed: {status}");
                }
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut measured = Measured::default();
    for worker in workers {
        match worker.await {
            Ok(latencies) => measured.latencies.extend(latencies),
            Err(err) => panic!("{err}"),
        }
    }
    measured.elapsed = started.elapsed();
    measured.calls = measured.latencies.len();
    measured
}

fn main() {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => panic!("{err}"),
    };
    runtime.block_on(run());
}

async fn run() {
    // Production runs with a log subscriber at `info` and the Prometheus recorder, so the bench
    // does too; log lines go to a sink.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("a log subscriber was already installed");
    }
    if let Err(err) = beehive_runtime::telemetry::metrics_handle() {
        panic!("{err}");
    }

    let config = support::test_config(false);
    let authenticator = match beehive_runtime::auth::Authenticator::from_config(&config.auth) {
        Ok(authenticator) => authenticator,
        Err(err) => panic!("{err}"),
    };
    let token = match authenticator.issue_user_token(7) {
        Ok(token) => token,
        Err(err) => panic!("{err}"),
    };

    let full = ServerBuilder::new(Arc::new(config), "bench")
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .add_service(TrivialServer(Arc::new(Trivial)))
        .start()
        .await;
    let full = match full {
        Ok(full) => full,
        Err(err) => panic!("{err}"),
    };
    let bare_incoming =
        match tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0))) {
            Ok(incoming) => incoming.with_nodelay(Some(true)),
            Err(err) => panic!("{err}"),
        };
    let bare_address = match bare_incoming.local_addr() {
        Ok(address) => address,
        Err(err) => panic!("{err}"),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(BareEchoServer)
            .serve_with_incoming(bare_incoming),
    );

    drive(full.local_addr(), &token, WARM_UP).await;
    drive(bare_address, &token, WARM_UP).await;
    let mut stack = Measured::default();
    let mut bare = Measured::default();
    for _ in 0..ROUNDS {
        for (target, address) in [(&mut stack, full.local_addr()), (&mut bare, bare_address)] {
            let round = drive(address, &token, ROUND).await;
            target.calls += round.calls;
            target.elapsed += round.elapsed;
            target.latencies.extend(round.latencies);
        }
    }

    let (stack_rate, bare_rate) = (stack.per_second(), bare.per_second());
    let (stack_p50, stack_p99) = (stack.percentile(0.50), stack.percentile(0.99));
    let (bare_p50, bare_p99) = (bare.percentile(0.50), bare.percentile(0.99));
    println!("concurrency {CONCURRENCY}, {ROUNDS} rounds of {ROUND:?} per server");
    println!("full stack: {stack_rate:>9.0} calls/s  p50 {stack_p50:?}  p99 {stack_p99:?}");
    println!("bare tonic: {bare_rate:>9.0} calls/s  p50 {bare_p50:?}  p99 {bare_p99:?}");
    println!(
        "throughput ratio {:.3}, p99 ratio {:.3}",
        stack_rate / bare_rate,
        stack_p99.as_secs_f64() / bare_p99.as_secs_f64()
    );
    if let Err(err) = full.shutdown().await {
        eprintln!("{err}");
    }
}
