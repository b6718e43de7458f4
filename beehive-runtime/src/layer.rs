//! Server-side per-call layer: builds the [`CallContext`] every adapter reads.
//!
//! From the request headers it takes the caller (`authorization: Bearer <jwt>` in `token` mode),
//! the deadline (`grpc-timeout`, else the configured default), the trace id (`traceparent`, else a
//! new one) and the peer address, and inserts the context into the request extensions, where
//! [`crate::rpc::call_context`] finds it. A missing token gives [`Caller::Anonymous`], and so does
//! a present but invalid or expired one, with the reason kept in
//! [`CallContext::rejected_token`]. The adapter then applies the RPC's access rule, so a public RPC
//! (Login, Register, …), health and reflection ignore a stale token, while an RPC that needs a
//! caller returns UNAUTHENTICATED with the reason.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::auth::Authenticator;
use crate::config::{AuthMode, Config};
use crate::context::{CallContext, Caller};
use crate::token_users::TokenUsers;

/// Metadata key of the bearer token.
pub const AUTHORIZATION: &str = "authorization";
/// Metadata key of the caller's time budget, in the gRPC `grpc-timeout` format.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";
/// Metadata key of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Message for an `authorization` header that is not `Bearer <token>`.
const MALFORMED_AUTHORIZATION: &str = "invalid authorization header: expected `Bearer <token>`";

/// How the layer establishes callers.
#[derive(Debug, Clone)]
pub enum CallerCheck {
    /// Verify bearer tokens with this authenticator.
    Token(Arc<Authenticator>),
    /// Trust every caller (`auth.mode: trust`).
    Trust,
}

/// Builds the call context of every call; see the module documentation.
#[derive(Debug, Clone)]
pub struct ContextLayer {
    check: CallerCheck,
    default_deadline: Duration,
    /// Put into the extensions of calls with a user token, for [`crate::rpc`] to check.
    token_users: Option<Arc<TokenUsers>>,
}

impl ContextLayer {
    pub fn new(check: CallerCheck, default_deadline: Duration) -> Self {
        Self {
            check,
            default_deadline,
            token_users: None,
        }
    }

    /// Makes RPCs that need a caller check that a user token's user exists.
    pub fn with_token_users(mut self, token_users: Option<Arc<TokenUsers>>) -> Self {
        self.token_users = token_users;
        self
    }

    /// Builds the layer from `auth.mode` and `server.default_deadline_ms`.
    pub fn from_config(config: &Config, authenticator: Arc<Authenticator>) -> Self {
        let check = match config.auth.mode {
            AuthMode::Token => CallerCheck::Token(authenticator),
            AuthMode::Trust => CallerCheck::Trust,
        };
        Self::new(check, config.default_deadline())
    }
}

impl<S> tower::Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ContextService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ContextLayer`].
#[derive(Debug, Clone)]
pub struct ContextService<S> {
    inner: S,
    layer: ContextLayer,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ContextService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let headers = request.headers();
        let trace_id = header_str(headers, TRACEPARENT)
            .and_then(crate::trace::parse_traceparent)
            .unwrap_or_else(crate::trace::new_trace_id);
        let timeout = header_str(headers, GRPC_TIMEOUT)
            .and_then(parse_grpc_timeout)
            .unwrap_or(self.layer.default_deadline);
        let remote_addr = request
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr());

        let (caller, token, rejected_token) = match &self.layer.check {
            CallerCheck::Trust => (Caller::Trusted, bearer_token(headers).ok().flatten(), None),
            CallerCheck::Token(auth) => match check_token(auth, headers) {
                Ok(Some((caller, token))) => (caller, Some(token), None),
                Ok(None) => (Caller::Anonymous, None, None),
                Err(rejection) => {
                    tracing::debug!(
                        trace_id = %trace_id,
                        method = request.uri().path(),
                        error = %rejection.detail,
                        "ignored a rejected token, the caller is anonymous"
                    );
                    (Caller::Anonymous, None, Some(rejection.message))
                }
            },
        };

        // The call's span puts `trace_id` on every line logged inside the call. With JSON logs,
        // an INFO span per call dropped a trivial RPC from about 0.86-0.95 to 0.63 of bare
        // tonic's throughput (benches/layers.rs, noisy runs on a busy 2-core machine), so it is
        // a DEBUG span unless spans are exported over OTLP. At INFO the per-call line of
        // `observe` still carries the trace id.
        let method = request.uri().path();
        let span = if crate::telemetry::spans_exported() {
            tracing::info_span!("rpc", trace_id = %trace_id, method)
        } else {
            tracing::debug_span!("rpc", trace_id = %trace_id, method)
        };
        let ctx = CallContext {
            caller,
            deadline: Instant::now() + timeout,
            trace_id,
            token,
            remote_addr,
            rejected_token,
        };
        if let (Caller::User(_), Some(token_users)) = (&ctx.caller, &self.layer.token_users) {
            request.extensions_mut().insert(Arc::clone(token_users));
        }
        request.extensions_mut().insert(ctx);
        self.inner.call(request).instrument(span)
    }
}

/// A presented token that does not identify a caller.
struct TokenRejection {
    /// Message sent to the caller.
    message: &'static str,
    /// Decoder details, written to the log only.
    detail: String,
}

/// Reads and verifies the bearer token: `Ok(None)` without an `authorization` header.
fn check_token(
    auth: &Authenticator,
    headers: &http::HeaderMap,
) -> Result<Option<(Caller, String)>, TokenRejection> {
    let token = bearer_token(headers).map_err(|reason| TokenRejection {
        message: MALFORMED_AUTHORIZATION,
        detail: reason,
    })?;
    let Some(token) = token else {
        return Ok(None);
    };
    match auth.verify(&token) {
        Ok(caller) => Ok(Some((caller, token))),
        Err(err) => Err(TokenRejection {
            message: err.client_message(),
            detail: err.to_string(),
        }),
    }
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Reads the bearer token: `Ok(None)` when there is no `authorization` header, an error when the
/// header is present but not of the form `Bearer <token>`.
fn bearer_token(headers: &http::HeaderMap) -> Result<Option<String>, String> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || MALFORMED_AUTHORIZATION.to_owned();
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.to_owned()))
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    const MAX_DIGITS: usize = 8;

    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    match unit {
        'H' => Some(Duration::from_secs(amount * 3600)),
        'M' => Some(Duration::from_secs(amount * 60)),
        'S' => Some(Duration::from_secs(amount)),
        'm' => Some(Duration::from_millis(amount)),
        'u' => Some(Duration::from_micros(amount)),
        'n' => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse_grpc_timeout("99n"), Some(Duration::from_nanos(99)));
    }

    #[test]
    fn grpc_timeout_malformed() {
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
    }

    #[test]
    fn bearer_token_forms() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer_token(&headers), Ok(None));
        headers.insert(AUTHORIZATION, http::HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&headers), Ok(Some("abc".to_owned())));
        headers.insert(
            AUTHORIZATION,
            http::HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers), Ok(Some("abc".to_owned())));
        headers.insert(AUTHORIZATION, http::HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&headers).is_err());
        headers.insert(AUTHORIZATION, http::HeaderValue::from_static("Bearer"));
        assert!(bearer_token(&headers).is_err());
    }
}
