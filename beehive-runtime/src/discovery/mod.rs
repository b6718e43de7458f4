//! Service discovery: where the instances of a service listen, and how a server announces itself.
//!
//! Two implementations share the [`Discovery`] trait: [`StaticDiscovery`] (addresses from
//! `discovery.static`, plus whatever registers in the same process) and [`EtcdDiscovery`]
//! (keys `beehive.rpc.<svc>/<lease id>` → `host:port` under a 10-second lease).

mod etcd;
mod fixed;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use etcd::{EtcdDiscovery, LEASE_TTL};
pub use fixed::StaticDiscovery;

use crate::config::Config;

/// A set of `host:port` addresses of one service.
pub type Endpoints = Arc<BTreeSet<String>>;

/// Receives every change of a service's endpoint set; the current set is always readable.
pub type EndpointWatch = tokio::sync::watch::Receiver<Endpoints>;

/// A failure to reach or use the discovery backend.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("etcd at {endpoints} failed: {source}")]
    Etcd {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd at {endpoints} did not answer within {timeout:?}")]
    Timeout {
        endpoints: String,
        timeout: std::time::Duration,
    },
}

/// A registry that services announce themselves in and clients find them through.
pub trait Discovery: Send + Sync + std::fmt::Debug + 'static {
    /// Announces that an instance of `service` listens on `address` until the returned
    /// registration is deregistered (or dropped, after which the entry expires).
    fn register<'a>(
        &'a self,
        service: &'a str,
        address: SocketAddr,
    ) -> BoxFuture<'a, Result<Registration, DiscoveryError>>;

    /// Watches the endpoint set of `service`. Must be called inside a Tokio runtime.
    fn watch(&self, service: &str) -> EndpointWatch;
}

/// Builds the discovery named by the configuration: etcd when `discovery.etcd_endpoints` is set,
/// else the static addresses.
pub fn from_config(config: &Config) -> Arc<dyn Discovery> {
    if config.discovery.etcd_endpoints.is_empty() {
        Arc::new(StaticDiscovery::from_config(config))
    } else {
        Arc::new(EtcdDiscovery::new(config.discovery.etcd_endpoints.clone()))
    }
}

type Deregister = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// One registered instance; [`Registration::deregister`] removes it.
pub struct Registration {
    service: String,
    address: SocketAddr,
    deregister: Option<Deregister>,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("service", &self.service)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Registration {
    fn new(
        service: &str,
        address: SocketAddr,
        deregister: Deregister,
        keeper: Option<tokio::task::JoinHandle<()>>,
    ) -> Self {
        Self {
            service: service.to_owned(),
            address,
            deregister: Some(deregister),
            keeper,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Removes the instance from discovery and waits until the backend confirmed it (etcd: the
    /// lease is revoked, so the key is gone).
    pub async fn deregister(mut self) {
        if let Some(deregister) = self.deregister.take() {
            deregister().await;
        }
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
        tracing::info!(service = %self.service, address = %self.address, "deregistered");
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Without an explicit deregistration the keep-alive stops, so an etcd key expires with its
        // lease; a static entry stays.
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
    }
}
