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
