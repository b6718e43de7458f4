//! The client stack against real servers on 127.0.0.1: load-aware balancing, dead instances,
//! the adaptive breaker and consistent hashing.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use beehive_runtime::balance::Balanced;
use beehive_runtime::breaker::BreakerConfig;
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::BalancerKind;
use beehive_runtime::discovery::{Discovery, StaticDiscovery};
use support::{Ping, ping, start_echo, test_config};

fn balanced(addresses: &[String], policy: BalancerKind, breaker: BreakerConfig) -> ServiceChannel {
    let discovery = StaticDiscovery::empty();
    discovery.set("echo", addresses.iter().cloned());
    ServiceChannel::balanced("echo", discovery.watch("echo"), policy, breaker)
}

#[tokio::test]
async fn slow_instance_gets_fewer_calls() {
    let config = test_config(true);
    let (fast, fast_record) = start_echo(&config, Duration::ZERO, None, None).await;
    let (slow, slow_record) = start_echo(&config, Duration::from_millis(40), None, None).await;
    let addresses = [fast.local_addr().to_string(), slow.local_addr().to_string()];
    let channel = balanced(&addresses, BalancerKind::P2c, BreakerConfig::default());

    const WORKERS: usize = 4;
    const CALLS_PER_WORKER: usize = 50;
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let channel = channel.clone();
        workers.push(tokio::spawn(async move {
            for _ in 0..CALLS_PER_WORKER {
                let pong = ping(channel.clone(), tonic::Request::new(Ping::default())).await;
                assert!(pong.is_ok(), "{pong:?}");
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap_or_else(|err| panic!("{err}"));
    }

    let fast_calls = fast_record.calls.load(Ordering::SeqCst);
    let slow_calls = slow_record.calls.load(Ordering::SeqCst);
    assert_eq!(fast_calls + slow_calls, WORKERS * CALLS_PER_WORKER);
    assert!(
        slow_calls * 5 < fast_calls,
        "slow {slow_calls}, fast {fast_calls}"
    );
    fast.shutdown().await.unwrap_or_else(|err| panic!("{err}"));
    slow.shutdown().await.unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn dead_instance_is_skipped() {
    let config = test_config(true);
    let (live, live_record) = start_echo(&config, Duration::ZERO, None, None).await;
    let dead = {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|err| panic!("{err}"));
        listener.local_addr().unwrap_or_else(|err| panic!("{err}"))
    };
    for policy in [
        BalancerKind::P2c,
        BalancerKind::RoundRobin,
        BalancerKind::Random,
    ] {
        let discovery = StaticDiscovery::empty();
        discovery.set("echo", [live.local_addr().to_string(), dead.to_string()]);
        let balancer = Balanced::new(
            "echo",
            discovery.watch("echo"),
            policy,
            BreakerConfig::default(),
        );
        // The background probe takes the dead address out of rotation before any call.
        let probed = Instant::now();
        while balancer.endpoints().iter().any(|endpoint| {
            endpoint.address() == dead.to_string() && endpoint.is_available(Instant::now())
        }) {
            assert!(
                probed.elapsed() < Duration::from_secs(5),
                "probe never marked {dead} down"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let channel = ServiceChannel::new(balancer);
        let before = live_record.calls.load(Ordering::SeqCst);
        for _ in 0..50 {
            let pong = ping(channel.clone(), tonic::Request::new(Ping::default())).await;
            assert!(pong.is_ok(), "{policy:?}: {pong:?}");
        }
        assert_eq!(
            live_record.calls.load(Ordering::SeqCst) - before,
            50,
            "{policy:?}"
        );
    }
    live.shutdown().await.unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn instance_dying_later_is_skipped() {
    let config = test_config(true);
    let (first, first_record) = start_echo(&config, Duration::ZERO, None, None).await;
    let (second, _) = start_echo(&config, Duration::ZERO, None, None).await;
    let addresses = [
        first.local_addr().to_string(),
        second.local_addr().to_string(),
    ];
    let channel = balanced(
        &addresses,
        BalancerKind::RoundRobin,
        BreakerConfig::default(),
    );
    for _ in 0..10 {
        let pong = ping(channel.clone(), tonic::Request::new(Ping::default())).await;
        assert!(pong.is_ok(), "{pong:?}");
    }
    second
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));

    let mut failures = 0;
    let before = first_record.calls.load(Ordering::SeqCst);
    for _ in 0..40 {
        if ping(channel.clone(), tonic::Request::new(Ping::default()))
            .await
            .is_err()
        {
            failures += 1;
        }
    }
    // The first call to the stopped instance fails and takes it out of rotation.
    assert!(failures <= 1, "{failures} failures");
    assert_eq!(
        first_record.calls.load(Ordering::SeqCst) - before,
        40 - failures
    );
    first.shutdown().await.unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn breaker_opens_and_closes_again() {
    let config = test_config(true);
    let (server, record) = start_echo(&config, Duration::ZERO, None, None).await;
    let breaker = BreakerConfig {
        window: Duration::from_secs(2),
        buckets: 20,
        ..BreakerConfig::default()
    };
    let channel = balanced(
        &[server.local_addr().to_string()],
        BalancerKind::P2c,
        breaker,
    );

    record.fail.store(true, Ordering::SeqCst);
    let mut throttled = 0;
    const FAILING_CALLS: usize = 200;
    for _ in 0..FAILING_CALLS {
        let status = ping(channel.clone(), tonic::Request::new(Ping::default()))
            .await
            .err()
            .unwrap_or_else(|| panic!("a call succeeded while the server fails"));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        if status.message().contains("throttled") {
            throttled += 1;
        }
    }
    let reached = record.calls.load(Ordering::SeqCst);
    assert_eq!(reached + throttled, FAILING_CALLS);
    assert!(
        throttled > FAILING_CALLS / 2,
        "only {throttled} calls throttled"
    );
    assert!(reached >= 10, "breaker let only {reached} calls through");

    record.fail.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let mut consecutive_ok = 0;
    while consecutive_ok < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "breaker did not close"
        );
        match ping(channel.clone(), tonic::Request::new(Ping::default())).await {
            Ok(_) => consecutive_ok += 1,
            Err(status) => {
                assert!(status.message().contains("throttled"), "{status:?}");
                consecutive_ok = 0;
            }
        }
    }
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn consistent_hash_keeps_key_on_one_instance() {
    let config = test_config(true);
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start_echo(&config, Duration::ZERO, None, None).await.0);
    }
    let addresses: Vec<String> = servers
        .iter()
        .map(|server| server.local_addr().to_string())
        .collect();
    let discovery = Arc::new(StaticDiscovery::empty());
    discovery.set("echo", addresses.iter().cloned());
    let channel = ServiceChannel::balanced(
        "echo",
        discovery.watch("echo"),
        BalancerKind::ConsistentHash,
        BreakerConfig::default(),
    );

    let mut owner: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for conversation in 0..30 {
            let key = format!("conversation-{conversation}");
            let mut request = tonic::Request::new(Ping::default());
            request.metadata_mut().insert(
                "x-beehive-hash-key",
                key.parse().unwrap_or_else(|err| panic!("{err}")),
            );
            let pong = ping(channel.clone(), request)
                .await
                .unwrap_or_else(|err| panic!("{err}"));
            let previous = owner
                .entry(key.clone())
                .or_insert_with(|| pong.server.clone());
            assert_eq!(*previous, pong.server, "{key} moved in round {round}");
        }
    }
    let used: std::collections::HashSet<&String> = owner.values().collect();
    assert_eq!(used.len(), 3, "30 keys used only {used:?}");

    // Removing one instance moves only the keys it owned.
    let removed = addresses[2].clone();
    discovery.set("echo", addresses[..2].iter().cloned());
    for (key, server) in &owner {
        let mut request = tonic::Request::new(Ping::default());
        request.metadata_mut().insert(
            "x-beehive-hash-key",
            key.parse().unwrap_or_else(|err| panic!("{err}")),
        );
        let pong = ping(channel.clone(), request)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        if *server != removed {
            assert_eq!(
                *server, pong.server,
                "{key} moved although its instance stayed"
            );
        }
        assert_ne!(pong.server, removed);
    }
    for server in servers {
        server
            .shutdown()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
}
