//! [`Mailer`] that relays through an SMTP server with lettre.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{MailError, Mailer, build_message};

/// Time allowed for each SMTP command before the send fails.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends mail through the SMTP relay named by a URL such as `smtp://127.0.0.1:2525`,
/// `smtp://user:pass@host:587?tls=required` or `smtps://host`.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport contains credentials, so only the sender is shown.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Builds the transport; no connection is made until the first message.
    pub fn new(url: &str, from: Mailbox) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(MailError::InvalidSmtpUrl)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let message = build_message(&self.from, to, subject, body)?;
        match self.transport.send(message).await {
            Ok(response) => {
                tracing::info!(to, code = %response.code(), "mail accepted by the SMTP relay");
                Ok(())
            }
            Err(err) => {
                tracing::warn!(to, error = %err, "sending mail through SMTP failed");
                Err(MailError::Smtp(err))
            }
        }
    }
}
