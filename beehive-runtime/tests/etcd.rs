//! etcd discovery against real etcd servers: registration, watch, re-registration after etcd
//! lost its data, and deregistration at shutdown.
//!
//! The shared etcd comes from `BEEHIVE_TEST_ETCD_ENDPOINTS`; the restart test starts and stops
//! an etcd of its own (`/usr/bin/etcd`, or `BEEHIVE_TEST_ETCD_BIN`) on free loopback ports.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beehive_runtime::discovery::{Discovery, EtcdDiscovery};
use beehive_runtime::testing::{ETCD_ENDPOINTS_VAR, backend_url};
use support::{start_echo, test_config};

/// Re-registration must happen within this time after etcd is back.
const REREGISTER_LIMIT: Duration = Duration::from_secs(15);

fn unique_service(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn etcd_client(endpoint: &str) -> etcd_client::Client {
    etcd_client::Client::connect([endpoint], None)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to etcd at {endpoint}: {err}"))
}

/// The (key, value) pairs under `service`'s prefix.
async fn registered(client: &mut etcd_client::Client, service: &str) -> Vec<(String, String)> {
    let prefix = format!("beehive.rpc.{service}/");
    let options = etcd_client::GetOptions::new().with_prefix();
    match client.get(prefix, Some(options)).await {
        Ok(response) => response
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap_or_default().to_owned(),
                    kv.value_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn registration_watch_and_deregistration() {
    let Some(endpoints) = backend_url(ETCD_ENDPOINTS_VAR) else {
        return;
    };
    let endpoint = endpoints
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let service = unique_service("reg");
    let discovery: Arc<dyn Discovery> = Arc::new(EtcdDiscovery::new(vec![endpoint.clone()]));
    let mut watch = discovery.watch(&service);

    let config = test_config(true);
    let (server, _) = start_echo(
        &config,
        Duration::ZERO,
        None,
        Some((discovery.clone(), &service)),
    )
    .await;
    let address = server.local_addr().to_string();

    let mut client = etcd_client(&endpoint).await;
    let entries = registered(&mut client, &service).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (key, value) = &entries[0];
    assert_eq!(value, &address);
    let lease: i64 = key
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("key {key} does not end in a lease id"));
    let ttl = client
        .lease_time_to_live(lease, None)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ttl.granted_ttl(), 10);

    let seen = tokio::time::timeout(
        Duration::from_secs(5),
        watch.wait_for(|set| set.contains(&address)),
    )
    .await
    .is_ok();
    assert!(seen, "watch never reported {address}");

    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(registered(&mut client, &service).await, Vec::new());
    let emptied =
        tokio::time::timeout(Duration::from_secs(5), watch.wait_for(|set| set.is_empty()))
            .await
            .is_ok();
    assert!(emptied, "watch still reports {:?}", *watch.borrow());
}

/// An etcd process of this test, killed when dropped.
struct OwnEtcd {
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for OwnEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|err| panic!("{err}"));
    listener
        .local_addr()
        .map(|address| address.port())
        .unwrap_or_else(|err| panic!("{err}"))
}

/// Starts etcd with a fresh data directory and waits until it serves requests.
async fn start_etcd(client_port: u16, peer_port: u16) -> OwnEtcd {
    let binary =
        std::env::var("BEEHIVE_TEST_ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".to_owned());
    let data = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new(&binary)
        .arg("--name=beehive-test")
        .arg(format!("--data-dir={}", data.path().join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=beehive-test={peer_url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
    let etcd = OwnEtcd { child, _data: data };

    let endpoint = format!("127.0.0.1:{client_port}");
    let started = Instant::now();
    loop {
        if let Ok(mut client) = etcd_client::Client::connect([endpoint.as_str()], None).await
            && client.get("probe", None).await.is_ok()
        {
            return etcd;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "etcd on {endpoint} did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reregisters_after_etcd_restart() {
    // The variable tells that etcd is installed here; this test runs its own instance.
    if backend_url(ETCD_ENDPOINTS_VAR).is_none() {
        return;
    }
    let (client_port, peer_port) = (free_port(), free_port());
    let endpoint = format!("127.0.0.1:{client_port}");
    let etcd = start_etcd(client_port, peer_port).await;

    let service = unique_service("restart");
    let discovery: Arc<dyn Discovery> = Arc::new(EtcdDiscovery::new(vec![endpoint.clone()]));
    let config = test_config(true);
    let (server, _) = start_echo(
        &config,
        Duration::ZERO,
        None,
        Some((discovery.clone(), &service)),
    )
    .await;
    let address: SocketAddr = server.local_addr();
    let mut client = etcd_client(&endpoint).await;
    let before = registered(&mut client, &service).await;
    assert_eq!(before.len(), 1, "{before:?}");

    // Stop etcd and start it again without its data: the registration is gone from the server.
    drop(etcd);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let etcd = start_etcd(client_port, peer_port).await;
    let restarted = Instant::now();
    let mut client = etcd_client(&endpoint).await;
    let after = loop {
        let entries = registered(&mut client, &service).await;
        if !entries.is_empty() {
            break entries;
        }
        assert!(
            restarted.elapsed() < REREGISTER_LIMIT,
            "not registered again within {REREGISTER_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].1, address.to_string());

    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(registered(&mut client, &service).await, Vec::new());
    drop(etcd);
}
