//! A tiny gRPC service for the serving tests: `test.Echo/Ping` runs through the same adapter path
//! (`run_unary`) as generated services, records what its logic saw, and can forward the call to
//! a next hop, sleep, or fail.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use beehive_runtime::client::{Body, ServiceChannel};
use beehive_runtime::config::{AuthMode, Config};
use beehive_runtime::server::{RunningServer, ServerBuilder};
use beehive_runtime::{Access, CallContext, Handle, Rpc, ServiceError, Validate};
use futures::future::BoxFuture;

pub const SERVICE_NAME: &str = "test.Echo";
pub const PING_PATH: &str = "/test.Echo/Ping";
/// Same logic as `Ping`, but public: callers need no token.
pub const PUBLIC_PING_PATH: &str = "/test.Echo/PublicPing";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Ping {
    /// Time the last hop sleeps before it answers.
    #[prost(uint64, tag = "1")]
    pub delay_ms: u64,
    /// Hops still to go: a server with a next hop forwards while this is above 0.
    #[prost(uint32, tag = "2")]
    pub hops: u32,
    /// Free text the logic ignores; a string field for decoding tests.
    #[prost(string, tag = "3")]
    pub note: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Pong {
    #[prost(string, tag = "1")]
    pub caller: String,
    /// Time left before the deadline when the answering hop's logic started.
    #[prost(uint64, tag = "2")]
    pub remaining_ms: u64,
    #[prost(string, tag = "3")]
    pub trace_id: String,
    /// Listen address of the answering server.
    #[prost(string, tag = "4")]
    pub server: String,
}

impl Validate for Ping {
    fn validate(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

pub struct PingRpc;

impl Rpc for PingRpc {
    type Request = Ping;
    type Response = Pong;
    const SERVICE: &'static str = SERVICE_NAME;
    const METHOD: &'static str = "Ping";
    const PATH: &'static str = PING_PATH;
    const ACCESS: Access = Access::Authenticated;
}

pub struct PublicPingRpc;

impl Rpc for PublicPingRpc {
    type Request = Ping;
    type Response = Pong;
    const SERVICE: &'static str = SERVICE_NAME;
    const METHOD: &'static str = "PublicPing";
    const PATH: &'static str = PUBLIC_PING_PATH;
    const ACCESS: Access = Access::Public;
}

/// What one server's logic saw and did.
#[derive(Debug, Default)]
pub struct Record {
    pub calls: AtomicUsize,
    pub finished: AtomicUsize,
    pub remaining_ms: Mutex<Vec<u64>>,
    pub fail: AtomicBool,
}

pub struct EchoLogic {
    pub name: Mutex<String>,
    pub delay: Duration,
    pub next: Option<ServiceChannel>,
    pub record: Arc<Record>,
}

impl Handle<PingRpc> for EchoLogic {
    async fn handle(&self, ctx: CallContext, request: Ping) -> Result<Pong, ServiceError> {
        let remaining_ms = ctx.remaining().as_millis() as u64;
        self.record.calls.fetch_add(1, Ordering::SeqCst);
        self.record
            .remaining_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(remaining_ms);
        if self.record.fail.load(Ordering::SeqCst) {
            return Err(ServiceError::Unavailable("switched to failing".to_owned()));
        }
        if request.hops > 0
            && let Some(next) = &self.next
        {
            let forwarded = Ping {
                hops: request.hops - 1,
                ..request
            };
            let pong = ping(
                next.clone(),
                beehive_runtime::client::outgoing(&ctx, forwarded),
            )
            .await
            .map_err(ServiceError::Downstream)?;
            self.record.finished.fetch_add(1, Ordering::SeqCst);
            return Ok(pong);
        }
        tokio::time::sleep(self.delay + Duration::from_millis(request.delay_ms)).await;
        self.record.finished.fetch_add(1, Ordering::SeqCst);
        let server = self
            .name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(Pong {
            caller: format!("{:?}", ctx.caller),
            remaining_ms,
            trace_id: ctx.trace_id,
            server,
        })
    }
}

impl Handle<PublicPingRpc> for EchoLogic {
    async fn handle(&self, ctx: CallContext, request: Ping) -> Result<Pong, ServiceError> {
        <Self as Handle<PingRpc>>::handle(self, ctx, request).await
    }
}

/// The tonic-level service around [`EchoLogic`], as a generated adapter would be.
#[derive(Clone)]
pub struct EchoServer(pub Arc<EchoLogic>);

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = SERVICE_NAME;
}

struct PingService<R>(Arc<EchoLogic>, std::marker::PhantomData<R>);

impl<R> tonic::server::UnaryService<Ping> for PingService<R>
where
    R: Rpc<Request = Ping, Response = Pong>,
    EchoLogic: Handle<R>,
{
    type Response = Pong;
    type Future = BoxFuture<'static, Result<tonic::Response<Pong>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<Ping>) -> Self::Future {
        let logic = self.0.clone();
        Box::pin(async move { beehive_runtime::rpc::run_unary::<R, _>(&*logic, request).await })
    }
}

impl tower::Service<http::Request<Body>> for EchoServer {
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
            match request.uri().path() {
                PING_PATH => {
                    let service = PingService::<PingRpc>(logic, std::marker::PhantomData);
                    Ok(grpc.unary(service, request).await)
                }
                PUBLIC_PING_PATH => {
                    let service = PingService::<PublicPingRpc>(logic, std::marker::PhantomData);
                    Ok(grpc.unary(service, request).await)
                }
                _ => Ok(tonic::Status::unimplemented("unknown method").into_http()),
            }
        })
    }
}

/// Calls `test.Echo/Ping` over `channel`.
pub async fn ping(
    channel: ServiceChannel,
    request: tonic::Request<Ping>,
) -> Result<Pong, tonic::Status> {
    call_echo(channel, PING_PATH, request).await
}

/// Calls the echo method at `path` (`PING_PATH` or `PUBLIC_PING_PATH`) over `channel`.
pub async fn call_echo(
    channel: ServiceChannel,
    path: &'static str,
    request: tonic::Request<Ping>,
) -> Result<Pong, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(
        request,
        path,
        tonic_prost::ProstCodec::<Ping, Pong>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A configuration for tests: token mode, or trust mode when `trust` is set.
pub fn test_config(trust: bool) -> Config {
    let mut config = Config::default();
    config.auth.jwt_secret = "test-secret-0123456789abcdef".to_owned();
    if trust {
        config.auth.mode = AuthMode::Trust;
    }
    config
}

/// Starts an echo server on 127.0.0.1 with a free port.
pub async fn start_echo(
    config: &Config,
    delay: Duration,
    next: Option<ServiceChannel>,
    discovery: Option<(Arc<dyn beehive_runtime::discovery::Discovery>, &str)>,
) -> (RunningServer, Arc<Record>) {
    let record = Arc::new(Record::default());
    let logic = Arc::new(EchoLogic {
        name: Mutex::new(String::new()),
        delay,
        next,
        record: record.clone(),
    });
    let free: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let name = discovery.as_ref().map_or("echo", |(_, name)| *name);
    let mut builder = ServerBuilder::new(Arc::new(config.clone()), name)
        .listen(free)
        .add_service(EchoServer(logic.clone()));
    if let Some((discovery, _)) = discovery {
        builder = builder.discovery(discovery);
    }
    let running = match builder.start().await {
        Ok(running) => running,
        Err(err) => panic!("echo server did not start: {err}"),
    };
    *logic
        .name
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = running.local_addr().to_string();
    (running, record)
}

/// A plain channel to one address, without balancing.
pub fn direct(address: SocketAddr) -> ServiceChannel {
    match ServiceChannel::lazy(&format!("http://{address}")) {
        Ok(channel) => channel,
        Err(err) => panic!("invalid address {address}: {err}"),
    }
}

/// `test.Echo/Ping` without any Beehive layer or adapter: the bare tonic baseline for benches.
#[derive(Clone)]
pub struct BareEchoServer;

impl tonic::server::NamedService for BareEchoServer {
    const NAME: &'static str = SERVICE_NAME;
}

struct BarePing;

impl tonic::server::UnaryService<Ping> for BarePing {
    type Response = Pong;
    type Future = futures::future::Ready<Result<tonic::Response<Pong>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<Ping>) -> Self::Future {
        futures::future::ready(Ok(tonic::Response::new(Pong::default())))
    }
}

impl tower::Service<http::Request<Body>> for BareEchoServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != PING_PATH {
                return Ok(tonic::Status::unimplemented("unknown method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(BarePing, request).await)
        })
    }
}
