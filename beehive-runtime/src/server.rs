//! Server bootstrap for generated services: one tonic server with the serving layers, gRPC health
//! and reflection, discovery registration and a bounded graceful shutdown.
//!
//! ```ignore
//! let running = ServerBuilder::new(config.clone(), "user")
//!     .descriptor_set(beehive_generated::FILE_DESCRIPTOR_SET)
//!     .discovery(discovery.clone())
//!     .add_service(user_server)
//!     .start()
//!     .await?;
//! println!("user listens on {}", running.local_addr());
//! running.run_until(beehive_runtime::server::shutdown_signal()).await?;
//! ```

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

use crate::auth::{AuthError, Authenticator};
use crate::client::Body;
use crate::config::Config;
use crate::decode_error::DecodeErrorLayer;
use crate::discovery::{Discovery, DiscoveryError, Registration};
use crate::layer::ContextLayer;
use crate::shed::LoadShedLayer;
use crate::token_users::TokenUsers;

/// Longest time a shutdown waits for calls in flight before it stops them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure to start or stop a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "unknown service `{0}`: expected one of user, friend, message, chat, file, search, or an explicit listen address"
    )]
    UnknownService(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid reflection descriptor set: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot register in discovery: {0}")]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Sets a generated server's message size limits; generated code implements it for every
/// service so [`ServerBuilder::add_limited_service`] can apply `server.max_message_bytes`.
pub trait MessageLimits: Sized {
    fn with_message_limits(self, max_bytes: usize) -> Self;
}

/// Collects the services of one server and starts it; see the module documentation.
pub struct ServerBuilder {
    config: Arc<Config>,
    service: String,
    listen: Option<SocketAddr>,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_set: Option<Vec<u8>>,
    discovery: Option<Arc<dyn Discovery>>,
    authenticator: Option<Arc<Authenticator>>,
    token_users: Option<Arc<TokenUsers>>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("service", &self.service)
            .field("listen", &self.listen)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Starts a server for `service` (`user`, `friend`, …): it listens on
    /// `services.<service>.listen` and registers under that name.
    pub fn new(config: Arc<Config>, service: &str) -> Self {
        Self {
            config,
            service: service.to_owned(),
            listen: None,
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptor_set: None,
            discovery: None,
            authenticator: None,
            token_users: None,
        }
    }

    /// Listens on `address` instead of the configured one (port 0 picks a free port).
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = Some(address);
        self
    }

    /// Serves the gRPC reflection services from this encoded `FileDescriptorSet`. The set may
    /// describe more services than this server runs, because reflection lists only the added
    /// services, health and reflection itself.
    pub fn descriptor_set(mut self, bytes: &[u8]) -> Self {
        self.descriptor_set = Some(bytes.to_vec());
        self
    }

    /// Registers the server here after it binds, and deregisters first on shutdown.
    pub fn discovery(mut self, discovery: Arc<dyn Discovery>) -> Self {
        self.discovery = Some(discovery);
        self
    }

    /// Verifies tokens with this authenticator instead of one built from `auth.*`.
    pub fn authenticator(mut self, authenticator: Arc<Authenticator>) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Rejects user tokens whose user does not exist on RPCs that need a caller, with
    /// UNAUTHENTICATED; see [`crate::token_users`]. Without it such tokens are accepted.
    pub fn token_users(mut self, token_users: Arc<TokenUsers>) -> Self {
        self.token_users = Some(token_users);
        self
    }

    /// `server.max_message_bytes`, the limit generated servers should be built with.
    pub fn max_message_bytes(&self) -> usize {
        self.config.max_message_bytes()
    }

    /// Adds a tonic service as it is. Health reports SERVING for its name.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Adds a tonic service after applying `server.max_message_bytes` to it.
    pub fn add_limited_service<S>(self, service: S) -> Self
    where
        S: MessageLimits
            + tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let limit = self.max_message_bytes();
        self.add_service(service.with_message_limits(limit))
    }

    fn listen_address(&self) -> Result<SocketAddr, ServerError> {
        if let Some(address) = self.listen {
            return Ok(address);
        }
        self.config
            .service(&self.service)
            .map(|service| service.listen)
            .ok_or_else(|| ServerError::UnknownService(self.service.clone()))
    }

    /// Binds the listen address, starts serving, and registers in discovery.
    pub async fn start(mut self) -> Result<RunningServer, ServerError> {
        let address = self.listen_address()?;
        let authenticator = match self.authenticator.take() {
            Some(authenticator) => authenticator,
            None => Arc::new(Authenticator::from_config(&self.config.auth)?),
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        for name in &self.names {
            health
                .set_service_status(*name, tonic_health::ServingStatus::Serving)
                .await;
        }
        let mut routes = self.routes;
        routes.add_service(health_service);
        if let Some(bytes) = &self.descriptor_set {
            let v1 = reflection_builder(bytes, &self.names).build_v1()?;
            let v1alpha = reflection_builder(bytes, &self.names).build_v1alpha()?;
            routes.add_service(v1);
            routes.add_service(v1alpha);
        }

        let incoming = tonic::transport::server::TcpIncoming::bind(address)
            .map_err(|source| ServerError::Bind { address, source })?
            .with_nodelay(Some(true));
        let local_addr = incoming
            .local_addr()
            .map_err(|source| ServerError::Bind { address, source })?;

        let layers = tower::ServiceBuilder::new()
            .layer(LoadShedLayer::new(self.config.server.max_concurrent_calls))
            .layer(
                ContextLayer::from_config(&self.config, authenticator)
                    .with_token_users(self.token_users.clone()),
            )
            .layer(DecodeErrorLayer)
            .into_inner();
        let (stop_sender, stop) = oneshot::channel::<()>();
        let mut routes = routes.routes();
        let served = served_services(&self.names, self.descriptor_set.is_some());
        let axum_router = routes.axum_router_mut();
        *axum_router = std::mem::take(axum_router)
            .fallback(move |uri: http::Uri| unknown_service(uri, served.clone()));
        let router = tonic::transport::Server::builder()
            .layer(layers)
            .add_routes(routes);
        let serving = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop.await;
        }));
        tracing::info!(service = %self.service, address = %local_addr, "server listening");

        let registration = match &self.discovery {
            Some(discovery) => {
                let announced = announced_address(local_addr);
                match discovery.register(&self.service, announced).await {
                    Ok(registration) => Some(registration),
                    Err(err) => {
                        let _ = stop_sender.send(());
                        serving.abort();
                        return Err(err.into());
                    }
                }
            }
            None => None,
        };

        Ok(RunningServer {
            service: self.service,
            local_addr,
            health,
            names: self.names,
            registration,
            stop: Some(stop_sender),
            serving,
        })
    }
}

/// Starts a reflection builder that describes and lists exactly what a server runs: the
/// services in `names` (from `descriptor_set`), health and both reflection versions. Without
/// the names it would list every service in the set, including ones this server does not run.
fn reflection_builder<'b>(
    descriptor_set: &'b [u8],
    names: &[&str],
) -> tonic_reflection::server::Builder<'b> {
    use tonic_reflection::pb::{v1, v1alpha};

    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptor_set)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name(tonic_health::pb::health_server::SERVICE_NAME)
        .with_service_name(v1::server_reflection_server::SERVICE_NAME)
        .with_service_name(v1alpha::server_reflection_server::SERVICE_NAME);
    for name in names {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Lists the services a server runs, for the error of a call to any other service.
fn served_services(names: &[&str], reflection: bool) -> Arc<str> {
    use tonic_reflection::pb::{v1, v1alpha};

    let mut served: Vec<&str> = names.to_vec();
    served.push(tonic_health::pb::health_server::SERVICE_NAME);
    if reflection {
        served.push(v1::server_reflection_server::SERVICE_NAME);
        served.push(v1alpha::server_reflection_server::SERVICE_NAME);
    }
    served.join(", ").into()
}

/// Answers a call to a service this server does not run, such as a call sent to the wrong
/// port. tonic's own fallback returns UNIMPLEMENTED with an empty message.
async fn unknown_service(uri: http::Uri, served: Arc<str>) -> http::Response<Body> {
    let service = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    tonic::Status::unimplemented(format!(
        "service `{service}` is not served on this port, which serves {served}"
    ))
    .into_http()
}

/// The address others can reach: a wildcard bind is announced as loopback.
fn announced_address(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port())
    } else {
        bound
    }
}

/// A started server; shut it down with [`RunningServer::shutdown`].
pub struct RunningServer {
    service: String,
    local_addr: SocketAddr,
    health: tonic_health::server::HealthReporter,
    names: Vec<&'static str>,
    registration: Option<Registration>,
    stop: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("service", &self.service)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `signal` completes, then shuts down.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), ServerError> {
        signal.await;
        self.shutdown().await
    }

    /// Deregisters from discovery, reports NOT_SERVING, stops accepting connections and waits up
    /// to [`DRAIN_TIMEOUT`] for calls in flight; calls still running then are cut off.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        tracing::info!(service = %self.service, address = %self.local_addr, "shutting down");
        if let Some(registration) = self.registration.take() {
            registration.deregister().await;
        }
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        for name in &self.names {
            self.health
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut self.serving).await {
            Ok(joined) => joined??,
            Err(_) => {
                tracing::warn!(service = %self.service, timeout_secs = DRAIN_TIMEOUT.as_secs(), "calls still running after the drain timeout were cut off");
                self.serving.abort();
            }
        }
        tracing::info!(service = %self.service, "server stopped");
        Ok(())
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}
