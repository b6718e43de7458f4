//! The typed error every piece of logic returns, and its mapping to gRPC status codes.

use std::error::Error as StdError;

use tonic::{Code, Status};

/// Metadata key that carries the name of the offending field next to the status message.
pub const FIELD_METADATA_KEY: &str = "x-beehive-field";

/// Boxed error source kept for logs; clients only ever see "internal error".
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure of an RPC, typed by the gRPC code it maps to.
///
/// Logic returns this type and never builds a [`Status`] itself, so the code and wording of every
/// error stay consistent across services.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid argument `{field}`: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// `field`, when set, is the request field whose value named the missing entity.
    #[error("{what} not found{}", field_suffix(.field.as_deref()))]
    NotFound { what: String, field: Option<String> },
    #[error("`{field}` already exists: {message}")]
    AlreadyExists { field: String, message: String },
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    #[error("data loss: {0}")]
    DataLoss(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// A downstream gRPC call failed; its status is passed on unchanged.
    #[error("downstream call failed: {0}")]
    Downstream(Status),
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl ServiceError {
    /// Builds an INVALID_ARGUMENT error naming `field` (a dotted path such as `parts[2].etag`).
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Builds a NOT_FOUND error; `what` reads like "user 42" or "conversation 7".
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound {
            what: what.into(),
            field: None,
        }
    }

    /// Builds a NOT_FOUND error for the entity that the request's `field` refers to, as in
    /// `not_found_field("conversation_id", "conversation 7")`.
    pub fn not_found_field(field: impl Into<String>, what: impl Into<String>) -> Self {
        Self::NotFound {
            what: what.into(),
            field: Some(field.into()),
        }
    }

    /// Builds an ALREADY_EXISTS error naming the field whose value is taken.
    pub fn already_exists(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::AlreadyExists {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated(message.into())
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::FailedPrecondition(message.into())
    }

    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::ResourceExhausted(message.into())
    }

    /// Wraps any error as INTERNAL; the source is logged, never sent to the client.
    pub fn internal(err: impl Into<BoxError>) -> Self {
        Self::Internal(err.into())
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::DataLoss(_) => Code::DataLoss,
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Downstream(status) => status.code(),
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The field this error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidArgument { field, .. } | Self::AlreadyExists { field, .. } => Some(field),
            Self::NotFound { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// Formats the ` (field `name`)` tail of a NOT_FOUND message, or nothing.
fn field_suffix(field: Option<&str>) -> String {
    field.map_or_else(String::new, |field| format!(" (field `{field}`)"))
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        let mut status = match &err {
            ServiceError::Downstream(status) => return status.clone(),
            ServiceError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                Status::internal("internal error")
            }
            other => Status::new(other.code(), other.to_string()),
        };
        if let Some(field) = err.field()
            && let Ok(value) = field.parse()
        {
            status.metadata_mut().insert(FIELD_METADATA_KEY, value);
        }
        status
    }
}

impl From<Status> for ServiceError {
    fn from(status: Status) -> Self {
        Self::Downstream(status)
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(Box::new(err))
    }
}

impl<E> From<sea_orm::TransactionError<E>> for ServiceError
where
    E: Into<ServiceError> + StdError,
{
    fn from(err: sea_orm::TransactionError<E>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner.into(),
        }
    }
}

/// Result alias used by logic and runtime helpers.
pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_field() {
        let status = Status::from(ServiceError::invalid("username", "must not be empty"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid argument `username`: must not be empty"
        );
        let field = status
            .metadata()
            .get(FIELD_METADATA_KEY)
            .and_then(|v| v.to_str().ok());
        assert_eq!(field, Some("username"));
    }

    #[test]
    fn not_found_names_field() {
        let status = Status::from(ServiceError::not_found_field(
            "conversation_id",
            "conversation 7",
        ));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            "conversation 7 not found (field `conversation_id`)"
        );
        let field = status
            .metadata()
            .get(FIELD_METADATA_KEY)
            .and_then(|v| v.to_str().ok());
        assert_eq!(field, Some("conversation_id"));

        let plain = Status::from(ServiceError::not_found("user 42"));
        assert_eq!(plain.message(), "user 42 not found");
        assert!(plain.metadata().get(FIELD_METADATA_KEY).is_none());
    }

    #[test]
    fn internal_hides_source() {
        let status = Status::from(ServiceError::internal("disk on fire"));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
