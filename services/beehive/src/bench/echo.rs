//! The baseline: a bare tonic server with no Beehive layers, serving only tonic-health's Health
//! service, called with `Check`. Every scenario is reported as a ratio to it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
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
