//! The calls a replay makes, as a trait: the gRPC implementation talks to a deployment, and
//! tests of the replay logic use an in-memory one.

use std::future::Future;

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    pub token: String,
}

/// A failed replay step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{} {}", beehive_runtime::observe::code_name(.0.code()), .0.message())]
    Rpc(tonic::Status),
    /// No verification code arrived in the mail outbox.
    #[error("no verification code for {email} in the outbox: {reason}")]
    Outbox { email: String, reason: String },
    /// Not tried, because an earlier phase failed for the same user or chat.
    #[error("skipped because an earlier phase failed for this user or chat")]
    PrerequisiteFailed,
}

impl StepError {
    /// Key under which the summary counts this error: the gRPC code name, `OUTBOX` or
    /// `PREREQUISITE_FAILED`.
    pub fn kind(&self) -> String {
        match self {
            Self::Rpc(status) => beehive_runtime::observe::code_name(status.code()).to_owned(),
            Self::Outbox { .. } => "OUTBOX".to_owned(),
            Self::PrerequisiteFailed => "PREREQUISITE_FAILED".to_owned(),
        }
    }

    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Rpc(status) => Some(status.code()),
            Self::Outbox { .. } | Self::PrerequisiteFailed => None,
        }
    }

    /// Whether trying the same step again may succeed: overload, unavailability and a missed
    /// deadline. Every step is safe to repeat, so a step that did commit is found on retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code(),
            Some(
                tonic::Code::ResourceExhausted
                    | tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
            )
        )
    }
}

impl From<tonic::Status> for StepError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc(status)
    }
}

pub type StepResult<T> = Result<T, StepError>;

/// The public RPCs a replay drives, one method per step.
pub trait ReplayApi: Send + Sync + 'static {
    /// Logs in by username; UNAUTHENTICATED when the account does not exist.
    fn login(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = StepResult<Session>> + Send;

    /// Sends a registration code to `email` and returns it, read back from the mail outbox.
    fn request_code(&self, email: &str) -> impl Future<Output = StepResult<String>> + Send;

    fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        code: &str,
    ) -> impl Future<Output = StepResult<Session>> + Send;

    fn is_friend(
        &self,
        user: &Session,
        friend_id: i64,
    ) -> impl Future<Output = StepResult<bool>> + Send;

    /// Returns the new request's id.
    fn send_friend_request(
        &self,
        from: &Session,
        to_user_id: i64,
        message: &str,
    ) -> impl Future<Output = StepResult<i64>> + Send;

    /// Finds a pending request from `from_user_id` to `to`, left by an interrupted run.
    fn pending_request_from(
        &self,
        to: &Session,
        from_user_id: i64,
    ) -> impl Future<Output = StepResult<Option<i64>>> + Send;

    fn accept_friend_request(
        &self,
        to: &Session,
        request_id: i64,
    ) -> impl Future<Output = StepResult<()>> + Send;

    /// Creates, or finds, the single conversation of `owner` and `peer_id`; returns its id.
    fn single_conversation(
        &self,
        owner: &Session,
        peer_id: i64,
    ) -> impl Future<Output = StepResult<i64>> + Send;

    /// Sends a text message; a repeated `client_message_id` returns the first message's id.
    fn send_message(
        &self,
        sender: &Session,
        conversation_id: i64,
        text: &str,
        client_message_id: &str,
    ) -> impl Future<Output = StepResult<i64>> + Send;
}
