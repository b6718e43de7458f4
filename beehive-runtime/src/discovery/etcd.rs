//! etcd discovery: each instance owns the key `beehive.rpc.<svc>/<lease id>` → `host:port`,
//! attached to a 10-second lease kept alive in the background. When the lease is lost (etcd
//! restarted without its data, or the instance was cut off for longer than the TTL), the keeper
//! grants a new lease and writes the key again. Clients watch the prefix.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, GetOptions, PutOptions, WatchOptions};
use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::{Discovery, DiscoveryError, EndpointWatch, Endpoints, Registration};

/// Lifetime of a registration lease; an instance that stops renewing vanishes after it.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// Time between two lease renewals: a third of the TTL, so one lost renewal does no harm.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(3);
/// Bound on every single etcd request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Wait before retrying after etcd failed; doubled up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);
/// Bound on the lease revocation at deregistration.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Fires at deregistration with a sender to confirm the lease revocation on.
type StopSignal = oneshot::Receiver<oneshot::Sender<()>>;

/// Prefix of the keys of `service`'s instances.
pub fn key_prefix(service: &str) -> String {
    format!("beehive.rpc.{service}/")
}

/// Discovery through etcd; see the module documentation.
#[derive(Clone)]
pub struct EtcdDiscovery {
    endpoints: Arc<Vec<String>>,
    client: Arc<tokio::sync::OnceCell<Client>>,
    watches: Arc<Mutex<HashMap<String, EndpointWatch>>>,
}

impl std::fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl EtcdDiscovery {
    /// Uses the etcd cluster at `endpoints` (`host:port`); connects on first use.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints: Arc::new(endpoints),
            client: Arc::new(tokio::sync::OnceCell::new()),
            watches: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn endpoints_label(&self) -> String {
        self.endpoints.join(",")
    }

    fn error(&self, source: etcd_client::Error) -> DiscoveryError {
        DiscoveryError::Etcd {
            endpoints: self.endpoints_label(),
            source,
        }
    }

    /// Runs one etcd request with [`REQUEST_TIMEOUT`].
    async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, DiscoveryError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(result) => result.map_err(|source| self.error(source)),
            Err(_) => Err(DiscoveryError::Timeout {
                endpoints: self.endpoints_label(),
                timeout: REQUEST_TIMEOUT,
            }),
        }
    }

    /// Returns the shared client. It connects lazily, so this works while etcd is down.
    async fn client(&self) -> Result<Client, DiscoveryError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), REQUEST_TIMEOUT);
        let client = self
            .client
            .get_or_try_init(|| async {
                let connect = Client::connect(self.endpoints.as_slice(), Some(options));
                self.bounded(connect).await
            })
            .await?;
        Ok(client.clone())
    }

    /// Grants a lease and writes the instance key under it; returns the lease id and the key.
    async fn put_with_lease(
        &self,
        service: &str,
        address: &str,
    ) -> Result<(i64, String), DiscoveryError> {
        let mut client = self.client().await?;
        let ttl = i64::try_from(LEASE_TTL.as_secs()).unwrap_or(i64::MAX);
        let lease = self.bounded(client.lease_grant(ttl, None)).await?.id();
        let key = format!("{}{lease}", key_prefix(service));
        let options = PutOptions::new().with_lease(lease);
        self.bounded(client.put(key.clone(), address, Some(options)))
            .await?;
        Ok((lease, key))
    }

    /// Renews `lease` until it is lost (an error) or `stop` fires (the deregistration's reply
    /// sender, absent when the registration was dropped).
    async fn keep_alive(
        &self,
        lease: i64,
        stop: &mut StopSignal,
    ) -> Result<Option<oneshot::Sender<()>>, DiscoveryError> {
        let mut client = self.client().await?;
        let (mut keeper, mut responses) = self.bounded(client.lease_keep_alive(lease)).await?;
        let mut interval = tokio::time::interval(KEEP_ALIVE_INTERVAL);
        loop {
            tokio::select! {
                reply = &mut *stop => return Ok(reply.ok()),
                _ = interval.tick() => {}
            }
            self.bounded(keeper.keep_alive()).await?;
            let response = self.bounded(responses.message()).await?;
            match response {
                Some(response) if response.ttl() > 0 => {}
                _ => {
                    return Err(self.error(etcd_client::Error::LeaseKeepAliveError(format!(
                        "lease {lease} expired"
                    ))));
                }
            }
        }
    }

    /// Keeps `service`'s key alive, writing it again under a new lease whenever the lease is
    /// lost, until deregistration; then revokes the lease so the key disappears at once.
    async fn keep_registered(
        self,
        service: String,
        address: String,
        mut lease: i64,
        mut stop: StopSignal,
    ) {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            match self.keep_alive(lease, &mut stop).await {
                Ok(reply) => return self.finish(lease, reply).await,
                Err(err) => {
                    tracing::warn!(%service, lease, error = %err, "etcd lease lost, registering again");
                }
            }
            loop {
                tokio::select! {
                    reply = &mut stop => return self.finish(lease, reply.ok()).await,
                    _ = tokio::time::sleep(delay) => {}
                }
                match self.put_with_lease(&service, &address).await {
                    Ok((new_lease, key)) => {
                        tracing::info!(%service, key, %address, "registered in etcd again");
                        // If etcd kept the old lease (only the connection broke), its key would
                        // linger until the lease expires; remove it now.
                        if let Err(err) = self.revoke(lease).await {
                            tracing::debug!(lease, error = %err, "old etcd lease not revoked");
                        }
                        lease = new_lease;
                        delay = FIRST_RETRY_DELAY;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(%service, attempt_delay_ms = delay.as_millis() as u64, error = %err, "etcd registration failed, retrying");
                        delay = (delay * 2).min(MAX_RETRY_DELAY);
                    }
                }
            }
        }
    }

    /// Revokes `lease`, which deletes its key; on failure the key expires with the lease.
    async fn revoke(&self, lease: i64) -> Result<(), DiscoveryError> {
        let mut client = self.client().await?;
        self.bounded(client.lease_revoke(lease)).await?;
        Ok(())
    }

    async fn finish(&self, lease: i64, done: Option<oneshot::Sender<()>>) {
        if let Err(err) = self.revoke(lease).await {
            tracing::warn!(lease, error = %err, "failed to revoke the etcd lease; its key expires with it");
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Follows the keys under `service`'s prefix and publishes the address set on `sender`;
    /// after an etcd failure it reads the prefix again and resumes. The last known set stays
    /// published while etcd is unreachable.
    async fn follow(self, service: String, sender: watch::Sender<Endpoints>) {
        let prefix = key_prefix(&service);
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            if sender.is_closed() {
                return;
            }
            if let Err(err) = self.follow_once(&prefix, &sender).await {
                tracing::warn!(%service, error = %err, "etcd watch failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            } else {
                delay = FIRST_RETRY_DELAY;
            }
        }
    }

    async fn follow_once(
        &self,
        prefix: &str,
        sender: &watch::Sender<Endpoints>,
    ) -> Result<(), DiscoveryError> {
        let mut client = self.client().await?;
        let snapshot = self
            .bounded(client.get(prefix, Some(GetOptions::new().with_prefix())))
            .await?;
        let revision = snapshot.header().map_or(0, |header| header.revision());
        let mut instances: BTreeMap<String, String> = snapshot
            .kvs()
            .iter()
            .filter_map(|kv| {
                Some((
                    kv.key_str().ok()?.to_owned(),
                    kv.value_str().ok()?.to_owned(),
                ))
            })
            .collect();
        publish(sender, &instances);

        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = self.bounded(client.watch(prefix, Some(options))).await?;
        // No timeout here: a quiet prefix sends nothing for a long time. A broken connection
        // ends the stream with an error, and the client's keep-alive pings detect a dead peer.
        while let Some(response) = stream
            .message()
            .await
            .map_err(|source| self.error(source))?
        {
            if response.canceled() {
                return Ok(());
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Ok(key) = kv.key_str() else { continue };
                match event.event_type() {
                    EventType::Put => {
                        if let Ok(value) = kv.value_str() {
                            instances.insert(key.to_owned(), value.to_owned());
                        }
                    }
                    EventType::Delete => {
                        instances.remove(key);
                    }
                }
            }
            publish(sender, &instances);
        }
        Ok(())
    }
}

fn publish(sender: &watch::Sender<Endpoints>, instances: &BTreeMap<String, String>) {
    let addresses: BTreeSet<String> = instances.values().cloned().collect();
    sender.send_if_modified(|current| {
        if **current == addresses {
            return false;
        }
        *current = Arc::new(addresses);
        true
    });
}

impl Discovery for EtcdDiscovery {
    fn register<'a>(
        &'a self,
        service: &'a str,
        address: SocketAddr,
    ) -> BoxFuture<'a, Result<Registration, DiscoveryError>> {
        Box::pin(async move {
            let value = address.to_string();
            let (lease, key) = self.put_with_lease(service, &value).await?;
            tracing::info!(%service, key, address = %value, "registered in etcd");

            let (stop_sender, stop) = oneshot::channel::<oneshot::Sender<()>>();
            let keeper =
                tokio::spawn(
                    self.clone()
                        .keep_registered(service.to_owned(), value, lease, stop),
                );
            let deregister = Box::new(move || -> BoxFuture<'static, ()> {
                Box::pin(async move {
                    let (done_sender, done) = oneshot::channel();
                    if stop_sender.send(done_sender).is_ok() {
                        let _ = tokio::time::timeout(DEREGISTER_TIMEOUT, done).await;
                    }
                })
            });
            Ok(Registration::new(
                service,
                address,
                deregister,
                Some(keeper),
            ))
        })
    }

    fn watch(&self, service: &str) -> EndpointWatch {
        let mut watches = self
            .watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = watches.get(service) {
            return existing.clone();
        }
        let (sender, receiver) = watch::channel(Endpoints::default());
        tokio::spawn(self.clone().follow(service.to_owned(), sender));
        watches.insert(service.to_owned(), receiver.clone());
        receiver
    }
}
