//! Server layer for requests that tonic rejects before the RPC's adapter runs.
//!
//! tonic 0.14 reads the request message before it calls the adapter. It reports a message it
//! cannot read with codes meant for a broken peer implementation. Protobuf that prost cannot
//! decode (invalid UTF-8 in a string, a bad varint, a wrong wire type) and a compressed flag
//! without `grpc-encoding` give INTERNAL, and a message above the limit gives OUT_OF_RANGE. For a
//! server these are bad requests, so this layer rewrites them to INVALID_ARGUMENT and
//! RESOURCE_EXHAUSTED. It also logs and counts them, because the adapter, which logs and counts
//! every other call, never ran.
//!
//! The layer marks each request with an [`AdapterReached`] flag that
//! [`crate::rpc::run_unary`] and [`crate::rpc::run_server_streaming`] set. Only responses of
//! calls whose flag is still clear are rewritten, so an INTERNAL error of the logic itself is
//! never touched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tonic::Code;

use crate::context::CallContext;

/// Prefix of prost's `DecodeError` text (prost 0.14), dropped from the message sent back.
const PROST_DECODE_PREFIX: &str = "failed to decode Protobuf message: ";
/// Prefix of tonic's over-limit text (tonic 0.14), replaced by a plainer one.
const TONIC_TOO_LARGE_PREFIX: &str = "Error, decoded message length too large: ";

/// Request extension that the RPC adapter sets once it has the decoded request.
#[derive(Debug, Clone, Default)]
pub struct AdapterReached(Arc<AtomicBool>);

impl AdapterReached {
    /// Records that the adapter received the decoded request.
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Layer that rewrites, logs and counts tonic's rejections of unreadable requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeErrorLayer;

impl<S> tower::Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrorService { inner }
    }
}

/// The service made by [`DecodeErrorLayer`].
#[derive(Debug, Clone)]
pub struct DecodeErrorService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for DecodeErrorService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = DecodeErrorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let reached = AdapterReached::default();
        request.extensions_mut().insert(reached.clone());
        let trace_id = request
            .extensions()
            .get::<CallContext>()
            .map(|ctx| ctx.trace_id.clone())
            .unwrap_or_default();
        // Cloning a `Uri` copies reference-counted bytes, not the path.
        let uri = request.uri().clone();
        DecodeErrorFuture {
            inner: self.inner.call(request),
            uri,
            reached,
            trace_id,
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of a call through [`DecodeErrorLayer`].
    pub struct DecodeErrorFuture<F> {
        #[pin]
        inner: F,
        uri: http::Uri,
        reached: AdapterReached,
        trace_id: String,
    }
}

impl<F, ResBody, E> Future for DecodeErrorFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        if this.reached.is_set() {
            return Poll::Ready(Ok(response));
        }
        match rewrite(response.headers()) {
            Some(status) => {
                let code = status.code();
                let method = this.uri.path();
                tracing::warn!(
                    trace_id = %this.trace_id,
                    method,
                    code = crate::observe::code_name(code),
                    error = %status.message(),
                    "request message rejected"
                );
                crate::observe::count_server_rejection(method, code);
                Poll::Ready(Ok(status.into_http()))
            }
            None => Poll::Ready(Ok(response)),
        }
    }
}

/// Returns the status that replaces a trailers-only response's INTERNAL or OUT_OF_RANGE status,
/// or `None` for any other response.
fn rewrite(headers: &http::HeaderMap) -> Option<tonic::Status> {
    let status = tonic::Status::from_header_map(headers)?;
    let message = status.message();
    match status.code() {
        Code::Internal => {
            let detail = message.strip_prefix(PROST_DECODE_PREFIX).unwrap_or(message);
            Some(tonic::Status::invalid_argument(format!(
                "invalid request message: {detail}"
            )))
        }
        Code::OutOfRange => {
            let detail = message
                .strip_prefix(TONIC_TOO_LARGE_PREFIX)
                .unwrap_or(message);
            Some(tonic::Status::resource_exhausted(format!(
                "request message too large: {detail}"
            )))
        }
        _ => None,
    }
}
