//! Outgoing calls: the channel type generated clients run on, and the metadata every call carries.

use std::task::{Context, Poll};

use tower::util::BoxCloneSyncService;

use crate::context::CallContext;
use crate::error::BoxError;

/// HTTP request body type of tonic clients.
pub type Body = tonic::body::Body;

type Inner = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// The channel every generated client runs on.
///
/// It hides the client stack (discovery, balancing, breaker, metrics) behind one cloneable tower
/// service, so generated code depends only on this type.
#[derive(Clone)]
pub struct ServiceChannel {
    inner: Inner,
}

impl ServiceChannel {
    /// Wraps any tower service that speaks HTTP/2 gRPC.
    pub fn new<S>(service: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        use tower::ServiceExt;
        Self {
            inner: BoxCloneSyncService::new(service.map_err(Into::into)),
        }
    }

    /// A channel to one fixed address, connected lazily (no discovery, no balancing).
    pub fn lazy(uri: &str) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(uri.to_owned())?.connect_lazy();
        Ok(Self::new(channel))
    }
}

impl tower::Service<http::Request<Body>> for ServiceChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = <Inner as tower::Service<http::Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.inner.call(request)
    }
}

/// Builds an outgoing request that continues the caller's call: it forwards the bearer token,
/// the trace id (as `traceparent`) and the time left before the deadline (as `grpc-timeout`).
pub fn outgoing<T>(ctx: &CallContext, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &ctx.token {
        set_bearer(&mut request, token);
    }
    continue_trace(&mut request, ctx);
    request
}

/// Builds an outgoing request that authenticates with a service token instead of the caller's.
pub fn outgoing_as_service<T>(
    ctx: &CallContext,
    message: T,
    service_token: &str,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    set_bearer(&mut request, service_token);
    continue_trace(&mut request, ctx);
    request
}

fn set_bearer<T>(request: &mut tonic::Request<T>, token: &str) {
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
}

fn continue_trace<T>(request: &mut tonic::Request<T>, ctx: &CallContext) {
    if let Ok(value) = crate::trace::traceparent_for(&ctx.trace_id).parse() {
        request.metadata_mut().insert("traceparent", value);
    }
    request.set_timeout(ctx.remaining());
}

impl ServiceChannel {
    /// Builds a channel that balances calls to `service` over the endpoints `watch` reports, with the
    /// adaptive breaker, the per-call deadline and the client metrics.
    pub fn balanced(
        service: &str,
        watch: crate::discovery::EndpointWatch,
        policy: crate::config::BalancerKind,
        breaker: crate::breaker::BreakerConfig,
    ) -> Self {
        Self::new(crate::balance::Balanced::new(
            service, watch, policy, breaker,
        ))
    }
}

/// Service tokens are issued again once less than this share of their lifetime is left.
const SERVICE_TOKEN_RENEW_FRACTION: u32 = 2;

/// Hands out one balanced [`ServiceChannel`] per service and the service token for internal
/// calls.
///
/// ```ignore
/// let factory = ClientFactory::new(config.clone(), discovery.clone())?;
/// let mut users = UserServiceClient::new(factory.channel("user"));
/// let token = factory.service_token()?;
/// users.get_user_info(outgoing_as_service(&ctx, request, &token)).await?;
/// ```
pub struct ClientFactory {
    config: std::sync::Arc<crate::config::Config>,
    discovery: std::sync::Arc<dyn crate::discovery::Discovery>,
    authenticator: std::sync::Arc<crate::auth::Authenticator>,
    breaker: crate::breaker::BreakerConfig,
    channels: std::sync::Mutex<std::collections::HashMap<String, ServiceChannel>>,
    service_token: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl std::fmt::Debug for ClientFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFactory")
            .field("discovery", &self.discovery)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl ClientFactory {
    /// Builds a factory whose channels find instances through `discovery` and sign service
    /// tokens with `auth.jwt_secret`.
    pub fn new(
        config: std::sync::Arc<crate::config::Config>,
        discovery: std::sync::Arc<dyn crate::discovery::Discovery>,
    ) -> Result<Self, crate::auth::AuthError> {
        let authenticator = crate::auth::Authenticator::from_config(&config.auth)?;
        Ok(Self {
            config,
            discovery,
            authenticator: std::sync::Arc::new(authenticator),
            breaker: crate::breaker::BreakerConfig::default(),
            channels: std::sync::Mutex::new(std::collections::HashMap::new()),
            service_token: std::sync::Mutex::new(None),
        })
    }

    /// Uses these breaker settings for channels created from now on.
    pub fn with_breaker(mut self, breaker: crate::breaker::BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Returns the authenticator built from `auth.*`, to share with servers of the same process.
    pub fn authenticator(&self) -> &std::sync::Arc<crate::auth::Authenticator> {
        &self.authenticator
    }

    /// Returns the discovery the channels use.
    pub fn discovery(&self) -> &std::sync::Arc<dyn crate::discovery::Discovery> {
        &self.discovery
    }

    /// Returns the channel to `service`, created on first use with `services.<service>.balancer`
    /// (power of two choices for services the configuration does not name). Must be called
    /// inside a Tokio runtime.
    pub fn channel(&self, service: &str) -> ServiceChannel {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(service) {
            return channel.clone();
        }
        let policy = self
            .config
            .service(service)
            .map_or(crate::config::BalancerKind::P2c, |settings| {
                settings.balancer
            });
        let channel =
            ServiceChannel::balanced(service, self.discovery.watch(service), policy, self.breaker);
        channels.insert(service.to_owned(), channel.clone());
        channel
    }

    /// Returns a service token (`role: service`) for calls between services, issued again
    /// before it expires.
    pub fn service_token(&self) -> Result<String, crate::auth::AuthError> {
        let mut cached = self
            .service_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let renew_after = self.authenticator.ttl() / SERVICE_TOKEN_RENEW_FRACTION;
        if let Some((token, issued)) = cached.as_ref()
            && issued.elapsed() < renew_after
        {
            return Ok(token.clone());
        }
        let token = self.authenticator.issue_service_token()?;
        *cached = Some((token.clone(), std::time::Instant::now()));
        Ok(token)
    }
}
