//! Outgoing mail: verification codes and notices.
//!
//! [`FileMailer`], the default, writes each message as an `.eml` file into `<data>/outbox/`, so a
//! deployment without an SMTP relay still works and tools (the replay command, tests) can read
//! the codes back with [`latest_code`]. [`SmtpMailer`] hands messages to an SMTP relay through
//! lettre when `mail.smtp_url` is set.

mod file;
mod smtp;

use async_trait::async_trait;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};

pub use file::{FileMailer, latest_code, latest_message};
pub use smtp::SmtpMailer;

/// Sender address used when the configuration names none.
pub const DEFAULT_FROM: &str = "Beehive <no-reply@beehive.localhost>";

/// A mail failure.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {address:?}")]
    InvalidAddress {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("building the message failed")]
    Build(#[from] lettre::error::Error),
    #[error("invalid SMTP URL")]
    InvalidSmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("sending through SMTP failed")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("I/O on {path} failed")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Sends plain-text mail.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `body` as a UTF-8 plain-text message to one address.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError>;
}

/// Parses an address such as `user@example.com` or `Name <user@example.com>`.
pub fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse::<Mailbox>()
        .map_err(|source| MailError::InvalidAddress {
            address: address.to_owned(),
            source,
        })
}

/// Builds the message both mailers send. The body goes out as 8bit UTF-8 when its lines allow
/// it (so digits stay readable in the `.eml` file) and as quoted-printable otherwise.
fn build_message(
    from: &Mailbox,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<Message, MailError> {
    let body = match Body::new_with_encoding(body.to_owned(), ContentTransferEncoding::EightBit) {
        Ok(body) => body,
        Err(_) => {
            Body::new_with_encoding(body.to_owned(), ContentTransferEncoding::QuotedPrintable)
                .unwrap_or_else(|_| Body::new(body.to_owned()))
        }
    };
    let message = Message::builder()
        .from(from.clone())
        .to(parse_mailbox(to)?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)?;
    Ok(message)
}
