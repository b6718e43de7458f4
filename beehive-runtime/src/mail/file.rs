//! [`Mailer`] that writes `.eml` files into an outbox directory, and helpers that read them back.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use lettre::message::Mailbox;
use regex::Regex;

use super::{MailError, Mailer, build_message};

/// File name extension of stored messages.
const EML_EXTENSION: &str = "eml";

static CODE_PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9]{6}\b").unwrap_or_else(|err| unreachable!("static pattern: {err}"))
});

/// Writes every message as one `.eml` file in a directory.
///
/// File names are `<unix nanoseconds, 20 digits>-<sequence, 10 digits>-<random>.eml`, so they
/// sort in sending order and never collide across processes. Each file is written under a
/// dot-prefixed temp name and renamed, so a reader never sees half a message.
#[derive(Debug)]
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
    sequence: AtomicU64,
}

impl FileMailer {
    /// Opens (creating when missing) the outbox directory.
    pub fn open(dir: impl Into<PathBuf>, from: Mailbox) -> Result<Self, MailError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
        Ok(Self {
            dir,
            from,
            sequence: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_file_name(&self) -> String {
        let nanos = chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .max(0);
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let random = &uuid::Uuid::new_v4().simple().to_string()[..8];
        format!("{nanos:020}-{sequence:010}-{random}.{EML_EXTENSION}")
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let message = build_message(&self.from, to, subject, body)?;
        let name = self.next_file_name();
        let temp = self.dir.join(format!(".{name}.tmp"));
        let target = self.dir.join(&name);

        tokio::fs::write(&temp, message.formatted())
            .await
            .map_err(|source| io_error(&temp, source))?;
        if let Err(source) = tokio::fs::rename(&temp, &target).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(io_error(&target, source));
        }

        tracing::info!(to, file = %name, "mail written to the outbox");
        Ok(())
    }
}

/// A message read back from the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMail {
    pub path: PathBuf,
    pub subject: String,
    pub body: String,
}

/// Finds the newest message in `dir` addressed to `to` (compared case-insensitively).
pub fn latest_message(dir: &Path, to: &str) -> Result<Option<StoredMail>, MailError> {
    let wanted = to.trim().to_ascii_lowercase();
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(dir, source)),
    };
    for entry in entries {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(EML_EXTENSION) {
            names.push(name);
        }
    }
    names.sort_unstable_by(|a, b| b.cmp(a));

    for name in names {
        let path = dir.join(&name);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(io_error(&path, source)),
        };
        let parsed = parse_eml(&text);
        if parsed.to.contains(&wanted) {
            return Ok(Some(StoredMail {
                path,
                subject: parsed.subject,
                body: parsed.body,
            }));
        }
    }
    Ok(None)
}

/// Extracts the first six-digit code from the newest message to `to`.
pub fn latest_code(dir: &Path, to: &str) -> Result<Option<String>, MailError> {
    let Some(mail) = latest_message(dir, to)? else {
        return Ok(None);
    };
    Ok(CODE_PATTERN
        .find(&mail.body)
        .map(|code| code.as_str().to_owned()))
}

struct ParsedEml {
    to: Vec<String>,
    subject: String,
    body: String,
}

/// Splits an RFC 5322 message into its recipients, subject and decoded body.
fn parse_eml(text: &str) -> ParsedEml {
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));

    // Folded header lines start with white space and continue the previous header.
    let mut headers: Vec<String> = Vec::new();
    for line in head.lines() {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_owned()),
        }
    }

    let mut to = Vec::new();
    let mut subject = String::new();
    let mut quoted_printable = false;
    for header in &headers {
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "to" => to.extend(value.split(',').map(extract_address)),
            "subject" => subject = value.to_owned(),
            "content-transfer-encoding" => {
                quoted_printable = value.eq_ignore_ascii_case("quoted-printable");
            }
            _ => {}
        }
    }

    let body = if quoted_printable {
        body.replace("=\n", "")
    } else {
        body.to_owned()
    };
    ParsedEml { to, subject, body }
}

fn extract_address(value: &str) -> String {
    let value = value.trim();
    let address = match (value.rfind('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value,
    };
    address.trim().to_ascii_lowercase()
}

fn io_error(path: &Path, source: std::io::Error) -> MailError {
    MailError::Io {
        path: path.to_owned(),
        source,
    }
}
