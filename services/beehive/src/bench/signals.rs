//! SIGINT and SIGTERM for `beehive bench`, which stops its run on either.

#[cfg(unix)]
use anyhow::Context as _;

/// SIGINT and SIGTERM, listened for from the moment [`Signals::listen`] returns.
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())
                    .context("failed to listen for SIGINT")?,
                terminate: signal(SignalKind::terminate())
                    .context("failed to listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            // NOTE: this installs the handler on the first poll, not in `listen`.
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
