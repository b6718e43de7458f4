//! Server-side load shedding: above a fixed number of calls in flight, new calls get
//! RESOURCE_EXHAUSTED at once instead of waiting in a queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::future::Either;

/// Limits the calls in flight over every connection of one server.
#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    limit: usize,
    in_flight: Arc<AtomicUsize>,
}

impl LoadShedLayer {
    /// Allows up to `limit` calls in flight (`server.max_concurrent_calls`).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Calls in flight now, shared by every service this layer wraps.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl<S> tower::Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            limit: self.limit,
            in_flight: self.in_flight.clone(),
        }
    }
}

/// The service made by [`LoadShedLayer`].
#[derive(Debug, Clone)]
pub struct LoadShed<S> {
    inner: S,
    limit: usize,
    in_flight: Arc<AtomicUsize>,
}

/// Decrements the in-flight count when the call's future finishes or is dropped.
#[derive(Debug)]
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// Future of an admitted call. It keeps its in-flight slot until it finishes.
    pub struct Admitted<F> {
        #[pin]
        inner: F,
        slot: InFlight,
    }
}

impl<F: Future> Future for Admitted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

type Rejected<T, E> = futures::future::Ready<Result<T, E>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for LoadShed<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Rejected<S::Response, S::Error>, Admitted<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = InFlight(self.in_flight.clone());
        if before >= self.limit {
            drop(slot);
            // No log line per shed call: under overload that would add load. The metric counts them.
            crate::observe::count_server_rejection(
                request.uri().path(),
                tonic::Code::ResourceExhausted,
            );
            let status = tonic::Status::resource_exhausted(format!(
                "server overloaded: more than {} calls in flight",
                self.limit
            ));
            return Either::Left(futures::future::ready(Ok(status.into_http())));
        }
        Either::Right(Admitted {
            inner: self.inner.call(request),
            slot,
        })
    }
}
