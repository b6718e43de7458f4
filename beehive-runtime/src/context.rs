//! Per-call context handed to every piece of logic: who calls, until when, and under which trace.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::ServiceError;

/// Who is making a call, as established by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token was presented (allowed only on public RPCs in `token` mode).
    Anonymous,
    /// A user token; the value is the token's subject.
    User(i64),
    /// A service token (`role: service`).
    Service,
    /// `trust` mode: a gateway already authenticated the caller, so no check applies.
    Trusted,
}

/// Context of one RPC call.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub caller: Caller,
    /// Absolute deadline: from the caller's `grpc-timeout`, else the configured default.
    pub deadline: Instant,
    /// W3C trace id (32 lowercase hex digits), taken from `traceparent` or newly made.
    pub trace_id: String,
    /// The caller's raw bearer token, forwarded on downstream calls. `None` when the token
    /// was rejected.
    pub token: Option<String>,
    pub remote_addr: Option<SocketAddr>,
    /// Why a presented token was rejected, as the caller may read it. The caller is then
    /// [`Caller::Anonymous`]: public RPCs, health and reflection run, and the RPCs that need a
    /// caller return UNAUTHENTICATED with this message.
    pub rejected_token: Option<&'static str>,
}

impl CallContext {
    /// A context for calls that start inside the process (background jobs, tests, replays).
    pub fn internal(caller: Caller, timeout: Duration) -> Self {
        Self {
            caller,
            deadline: Instant::now() + timeout,
            trace_id: crate::trace::new_trace_id(),
            token: None,
            remote_addr: None,
            rejected_token: None,
        }
    }

    /// Time left before the deadline, zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The user id of a user token, if the caller is a user.
    pub fn user_id(&self) -> Option<i64> {
        match self.caller {
            Caller::User(id) => Some(id),
            _ => None,
        }
    }

    pub fn is_service(&self) -> bool {
        matches!(self.caller, Caller::Service | Caller::Trusted)
    }

    /// Checks that the caller may act as `acting_user`, the value of request field `field`.
    ///
    /// Services and `trust` mode may act for anyone; a user only for themselves.
    pub fn require_acting_user(&self, field: &str, acting_user: i64) -> Result<(), ServiceError> {
        match self.caller {
            Caller::Service | Caller::Trusted => Ok(()),
            Caller::User(subject) if subject == acting_user => Ok(()),
            Caller::User(subject) => Err(ServiceError::permission_denied(format!(
                "`{field}` is {acting_user} but the token belongs to user {subject}"
            ))),
            Caller::Anonymous => Err(self.anonymous_error()),
        }
    }

    /// Returns the acting user: the token's subject, or `fallback` (a request field) for services.
    pub fn acting_user_or(&self, field: &str, fallback: i64) -> Result<i64, ServiceError> {
        self.require_acting_user(field, fallback)?;
        Ok(self.user_id().unwrap_or(fallback))
    }

    /// Checks that the caller has a service token, unless `trust` mode is on.
    pub fn require_service(&self) -> Result<(), ServiceError> {
        match self.caller {
            Caller::Service | Caller::Trusted => Ok(()),
            Caller::Anonymous => Err(self.anonymous_error()),
            Caller::User(_) => Err(ServiceError::permission_denied(
                "this RPC requires a service token",
            )),
        }
    }

    /// UNAUTHENTICATED for an anonymous caller: why its token was rejected, or that none came.
    fn anonymous_error(&self) -> ServiceError {
        ServiceError::unauthenticated(self.rejected_token.unwrap_or("missing bearer token"))
    }

    /// Checks that some authenticated caller is present.
    pub fn require_authenticated(&self) -> Result<(), ServiceError> {
        match self.caller {
            Caller::Anonymous => Err(self.anonymous_error()),
            _ => Ok(()),
        }
    }
}

/// Deadline used when the caller sends no `grpc-timeout` and nothing else is configured.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
