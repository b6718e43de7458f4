//! One suite for both mailers: the `.eml` outbox and SMTP against a sink started on loopback.

use std::path::Path;
use std::sync::{Arc, Mutex};

use beehive_runtime::mail::{
    DEFAULT_FROM, FileMailer, MailError, Mailer, SmtpMailer, latest_code, latest_message,
    parse_mailbox,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message as the receiving side saw it: envelope recipients and the raw data.
#[derive(Debug, Clone)]
struct Received {
    recipients: Vec<String>,
    data: String,
}

/// Reads what a mailer delivered, in delivery order.
trait Inbox {
    fn received(&self) -> Vec<Received>;
}

/// Sends a verification mail and a notice, then checks what arrived.
async fn conformance(mailer: &dyn Mailer, inbox: &dyn Inbox) {
    mailer
        .send(
            "Alice@Example.com",
            "Your code",
            "Your verification code is 482913.\nIt expires in 5 minutes.",
        )
        .await
        .unwrap();
    mailer
        .send("bob@example.com", "通知", "你好，这是一封测试邮件。")
        .await
        .unwrap();

    let refused = mailer.send("not an address", "x", "y").await;
    assert!(
        matches!(refused, Err(MailError::InvalidAddress { .. })),
        "{refused:?}"
    );

    let received = inbox.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].recipients, vec!["alice@example.com".to_owned()]);
    assert!(
        received[0].data.contains("Subject: Your code"),
        "{}",
        received[0].data
    );
    assert!(received[0].data.contains("482913"), "{}", received[0].data);
    assert_eq!(received[1].recipients, vec!["bob@example.com".to_owned()]);
    assert!(
        received[1].data.contains("你好，这是一封测试邮件。"),
        "{}",
        received[1].data
    );
}

struct OutboxInbox {
    dir: std::path::PathBuf,
}

impl Inbox for OutboxInbox {
    fn received(&self) -> Vec<Received> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                assert!(name.ends_with(".eml"), "unexpected file {name}");
                let data = std::fs::read_to_string(self.dir.join(&name)).unwrap();
                let to = data
                    .lines()
                    .find_map(|line| line.strip_prefix("To: "))
                    .unwrap()
                    .to_ascii_lowercase();
                Received {
                    recipients: vec![to],
                    data,
                }
            })
            .collect()
    }
}

#[tokio::test]
async fn file_mailer_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer = FileMailer::open(&outbox, parse_mailbox(DEFAULT_FROM).unwrap()).unwrap();

    conformance(&mailer, &OutboxInbox { dir: outbox }).await;
}

#[tokio::test]
async fn smtp_mailer_conformance() {
    let sink = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let mailer = SmtpMailer::new(&url, parse_mailbox(DEFAULT_FROM).unwrap()).unwrap();

    conformance(&mailer, &sink).await;
}

#[tokio::test]
async fn smtp_rejection_is_an_error() {
    let sink = SmtpSink::start_rejecting().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let mailer = SmtpMailer::new(&url, parse_mailbox(DEFAULT_FROM).unwrap()).unwrap();

    let result = mailer
        .send("alice@example.com", "Your code", "123456")
        .await;

    assert!(matches!(result, Err(MailError::Smtp(_))), "{result:?}");
    assert_eq!(sink.received().len(), 0);
}

#[tokio::test]
async fn latest_code_reads_newest_message() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::open(dir.path(), parse_mailbox(DEFAULT_FROM).unwrap()).unwrap();
    let long_line = format!("{} code 777111", "x".repeat(1_200));

    mailer
        .send("carol@example.com", "Code", "Your code is 111111.")
        .await
        .unwrap();
    mailer
        .send("dave@example.com", "Code", "Your code is 222222.")
        .await
        .unwrap();
    mailer
        .send("carol@example.com", "Code", "Your code is 333333.")
        .await
        .unwrap();
    mailer
        .send("erin@example.com", "Code", &long_line)
        .await
        .unwrap();

    assert_eq!(
        latest_code(dir.path(), "carol@example.com")
            .unwrap()
            .as_deref(),
        Some("333333")
    );
    assert_eq!(
        latest_code(dir.path(), "CAROL@example.com")
            .unwrap()
            .as_deref(),
        Some("333333")
    );
    assert_eq!(
        latest_code(dir.path(), "dave@example.com")
            .unwrap()
            .as_deref(),
        Some("222222")
    );
    assert_eq!(
        latest_code(dir.path(), "erin@example.com")
            .unwrap()
            .as_deref(),
        Some("777111")
    );
    assert_eq!(latest_code(dir.path(), "nobody@example.com").unwrap(), None);

    let mail = latest_message(dir.path(), "carol@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(mail.subject, "Code");
    assert!(
        mail.body.starts_with("Your code is 333333."),
        "{}",
        mail.body
    );
}

#[tokio::test]
async fn outbox_files_sort_in_send_order() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::open(dir.path(), parse_mailbox(DEFAULT_FROM).unwrap()).unwrap();

    for index in 0..20 {
        mailer
            .send(
                "frank@example.com",
                "Code",
                &format!("Your code is {:06}.", 100_000 + index),
            )
            .await
            .unwrap();
    }

    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 20);
    for (index, name) in names.iter().enumerate() {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.contains(&format!("{:06}", 100_000 + index)), "{name}");
    }
    assert_eq!(
        latest_code(dir.path(), "frank@example.com")
            .unwrap()
            .as_deref(),
        Some("100019")
    );
}

#[test]
fn missing_outbox_has_no_code() {
    assert_eq!(
        latest_code(Path::new("/nonexistent/beehive/outbox"), "a@b.c").unwrap(),
        None
    );
}

/// A minimal SMTP responder: accepts every session and records each message.
struct SmtpSink {
    port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
}

impl Inbox for SmtpSink {
    fn received(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }
}

impl SmtpSink {
    async fn start() -> Self {
        Self::spawn(false).await
    }

    /// Starts a sink that replies to every RCPT with 550.
    async fn start_rejecting() -> Self {
        Self::spawn(true).await
    }

    async fn spawn(reject_recipients: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink_messages = Arc::clone(&messages);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let messages = Arc::clone(&sink_messages);
                tokio::spawn(serve_session(socket, messages, reject_recipients));
            }
        });
        Self { port, messages }
    }
}

async fn serve_session(
    socket: tokio::net::TcpStream,
    messages: Arc<Mutex<Vec<Received>>>,
    reject_recipients: bool,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let mut recipients = Vec::new();
    write
        .write_all(b"220 sink.localhost ESMTP\r\n")
        .await
        .unwrap();

    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.localhost\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") {
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            if reject_recipients {
                b"550 mailbox unavailable\r\n"
            } else {
                let address = line.trim_end()[8..].trim().trim_matches(['<', '>']);
                recipients.push(address.to_ascii_lowercase());
                b"250 OK\r\n"
            }
        } else if command == "DATA" {
            write
                .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                .await
                .unwrap();
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            messages.lock().unwrap().push(Received {
                recipients: std::mem::take(&mut recipients),
                data,
            });
            b"250 queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if command == "RSET" || command == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await.unwrap();
    }
}
