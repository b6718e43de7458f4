//! Static discovery: addresses from `discovery.static`, plus instances registered in this process.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Discovery, DiscoveryError, EndpointWatch, Endpoints, Registration};
use crate::config::Config;

/// Fixed addresses per service; [`Discovery::register`] adds an address to its service's set
/// and deregistration removes it again.
///
/// `beehive up` with port 0 starts from [`StaticDiscovery::empty`], so clients find exactly the
/// addresses the servers bound.
#[derive(Debug, Default, Clone)]
pub struct StaticDiscovery {
    services: Arc<Mutex<HashMap<String, watch::Sender<Endpoints>>>>,
}

impl StaticDiscovery {
    /// No addresses until servers register.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds the discovery from the addresses of `discovery.static`.
    pub fn from_config(config: &Config) -> Self {
        let discovery = Self::empty();
        for (service, addresses) in &config.discovery.static_addresses {
            discovery.set(service, addresses.iter().cloned());
        }
        discovery
    }

    /// Replaces the address set of `service`.
    pub fn set(&self, service: &str, addresses: impl IntoIterator<Item = String>) {
        let addresses: BTreeSet<String> = addresses.into_iter().collect();
        self.update(service, |set| *set = addresses);
    }

    fn update(&self, service: &str, change: impl FnOnce(&mut BTreeSet<String>)) {
        let mut services = self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sender = services
            .entry(service.to_owned())
            .or_insert_with(|| watch::channel(Endpoints::default()).0);
        sender.send_modify(|endpoints| {
            let mut set = BTreeSet::clone(endpoints);
            change(&mut set);
            *endpoints = Arc::new(set);
        });
    }
}

impl Discovery for StaticDiscovery {
    fn register<'a>(
        &'a self,
        service: &'a str,
        address: SocketAddr,
    ) -> BoxFuture<'a, Result<Registration, DiscoveryError>> {
        let entry = address.to_string();
        self.update(service, |set| {
            set.insert(entry.clone());
        });
        let this = self.clone();
        let name = service.to_owned();
        let deregister = Box::new(move || -> BoxFuture<'static, ()> {
            this.update(&name, |set| {
                set.remove(&entry);
            });
            Box::pin(async {})
        });
        Box::pin(async move { Ok(Registration::new(service, address, deregister, None)) })
    }

    fn watch(&self, service: &str) -> EndpointWatch {
        let mut services = self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        services
            .entry(service.to_owned())
            .or_insert_with(|| watch::channel(Endpoints::default()).0)
            .subscribe()
    }
}
