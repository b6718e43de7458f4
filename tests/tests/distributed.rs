//! Distributed mode: six `beehive serve` processes of the built binary, finding each other in
//! etcd, on PostgreSQL + Redis + RabbitMQ, and the user story against them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use beehive::cli::ServiceName;
use beehive::clients::Endpoints;
use beehive_runtime::testing::{
    AMQP_URL_VAR, ETCD_ENDPOINTS_VAR, POSTGRES_URL_VAR, REDIS_URL_VAR, backend_url,
};
use beehive_tests::deploy::{TEST_BCRYPT_COST, new_tag};

/// How long the processes get to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `beehive` binary next to this test's folder (`target/<profile>/beehive`). The binary's
/// own integration test makes `cargo test --workspace` build it.
fn beehive_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("beehive");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p beehive` or `cargo test --workspace`",
        binary.display()
    );
    binary
}

/// Kills the processes when the test ends, whatever the outcome.
struct Processes(Vec<(ServiceName, Child)>);

impl Processes {
    /// Sends SIGTERM to each and waits for it to exit.
    fn stop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for (_, child) in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap()
}

fn wait_listening(address: SocketAddr, processes: &mut Processes) {
    let started = Instant::now();
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        for (service, child) in &mut processes.0 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "beehive serve {} exited at start: {status}",
                    service.as_str()
                );
            }
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "nothing listens on {address} after {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_six_serve_processes() {
    let (Some(postgres), Some(redis), Some(amqp), Some(etcd)) = (
        backend_url(POSTGRES_URL_VAR),
        backend_url(REDIS_URL_VAR),
        backend_url(AMQP_URL_VAR),
        backend_url(ETCD_ENDPOINTS_VAR),
    ) else {
        return;
    };
    let binary = beehive_binary();
    let tag = new_tag();
    let database = format!("beehive_dist_{tag}");
    let database_url = beehive_runtime::db::create_database(&postgres, &database)
        .await
        .unwrap();
    let data_dir = tempfile::tempdir().unwrap();

    let addresses: Vec<SocketAddr> = ServiceName::ALL
        .iter()
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let mut processes = Processes(Vec::new());
    for (service, address) in ServiceName::ALL.iter().zip(&addresses) {
        let listen_var = format!(
            "BEEHIVE_SERVICES__{}__LISTEN",
            service.as_str().to_uppercase()
        );
        let child = Command::new(&binary)
            .args(["serve", service.as_str(), "--bus-exchange"])
            .arg(format!("beehive.dist.{tag}"))
            .current_dir(data_dir.path())
            .env_remove("BEEHIVE_CONFIG")
            .env("BEEHIVE_DATA_DIR", data_dir.path())
            .env("BEEHIVE_DATABASE__URL", &database_url)
            .env("BEEHIVE_CACHE__REDIS_URL", &redis)
            .env("BEEHIVE_BUS__AMQP_URL", &amqp)
            .env("BEEHIVE_DISCOVERY__ETCD_ENDPOINTS", &etcd)
            .env("BEEHIVE_AUTH__BCRYPT_COST", TEST_BCRYPT_COST.to_string())
            .env("BEEHIVE_ADMIN__LISTEN", "127.0.0.1:0")
            .env("BEEHIVE_LOG__LEVEL", "warn")
            .env(listen_var, address.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        processes.0.push((*service, child));
    }
    for address in &addresses {
        wait_listening(*address, &mut processes);
    }

    let mut ordered = [addresses[0]; 6];
    ordered.copy_from_slice(&addresses);
    let endpoints = Endpoints::from_addresses(ordered);
    let outbox = data_dir.path().join(beehive::stack::OUTBOX_DIR);
    let outcome = beehive_tests::story::run(&endpoints, &outbox, &tag).await;

    processes.stop();
    if let Err(err) = beehive_runtime::db::drop_database(&postgres, &database).await {
        eprintln!("failed to drop test database {database}: {err}");
    }
    outcome.unwrap();
}
