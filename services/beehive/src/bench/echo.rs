//! The baseline: a bare tonic server with no Beehive layers, serving only tonic-health's Health
//! service, called with `Check`. Every scenario is reported as a ratio to it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::harness::CallFn;

/// A running baseline server; dropping it stops the server.
pub struct EchoServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Starts the bare server on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("failed to bind the echo baseline server")?;
        let addr = listener.local_addr()?;
        let (_reporter, health) = tonic_health::server::health_reporter();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = signal.await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "echo baseline server failed");
            }
        });
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Time a child baseline server has to print its address, and then to exit once asked.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the `beehive echo-server` subcommand: serves the baseline, prints its address on
/// standard output, and stops when standard input closes, so it ends with the process that
/// started it.
pub async fn serve_until_stdin_closes() -> anyhow::Result<()> {
    let server = EchoServer::start().await?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("{}\n", server.addr).as_bytes())
        .await?;
    stdout.flush().await?;
    let mut sink = Vec::new();
    // Returns at end of input or on a read error: either way the parent is gone.
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    server.stop().await;
    Ok(())
}

/// A baseline server running in a child `beehive echo-server` process.
pub struct EchoProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl EchoProcess {
    /// Starts this executable as `beehive echo-server` and reads the address it serves on.
    pub async fn start() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("failed to find the beehive executable")?;
        let mut child = Command::new(&exe)
            .arg("echo-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {} echo-server", exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the echo-server child has no standard output")?;
        let mut line = String::new();
        let read = tokio::time::timeout(CHILD_TIMEOUT, BufReader::new(stdout).read_line(&mut line))
            .await
            .context("the echo-server child did not print its address within 10 s")?
            .context("failed to read the echo-server child's address")?;
        if read == 0 {
            anyhow::bail!("the echo-server child exited before printing its address");
        }
        let addr = line
            .trim()
            .parse()
            .with_context(|| format!("the echo-server child printed `{}`", line.trim()))?;
        Ok(Self { addr, child })
    }

    /// Returns the child's process id, for reading its RSS.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Closes the child's standard input and waits for it to exit, killing it after a timeout.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(CHILD_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("the echo-server child did not exit; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// Calls `Check` on `channels`, worker `w` using channel `w % channels.len()`.
pub fn check_call(channels: Vec<Channel>) -> CallFn {
    let clients: Arc<Vec<HealthClient<Channel>>> =
        Arc::new(channels.into_iter().map(HealthClient::new).collect());
    Arc::new(move |worker| {
        let mut client = clients[worker % clients.len()].clone();
        Box::pin(async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ())
        })
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::connect_channels;
    use crate::bench::harness::{LoadOptions, Stop, run_load};

    #[tokio::test]
    async fn echo_answers_every_call() {
        let server = EchoServer::start().await.unwrap();
        let channels = connect_channels(&format!("http://{}", server.addr), 2)
            .await
            .unwrap();
        let options = LoadOptions {
            concurrency: 4,
            warmup: Duration::ZERO,
            stop: Stop::Calls(200),
            progress: false,
        };
        let result = run_load("echo", check_call(channels), &options).await;
        assert_eq!(result.stats.ok_count(), 200);
        assert_eq!(result.stats.error_count(), 0);
        server.stop().await;
    }
}
