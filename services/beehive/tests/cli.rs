//! The built `beehive` binary: its help, `token --service` and `reindex`. Having this test also makes
//! `cargo test --workspace` build the binary that the distributed end-to-end test spawns.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use beehive_runtime::Caller;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::config::Config;

fn beehive() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_beehive"));
    // No `etc/beehive.yaml` is read from an empty folder, so the defaults apply.
    command.current_dir(std::env::temp_dir());
    command.env_remove("BEEHIVE_CONFIG");
    command
}

#[test]
fn help_lists_commands() {
    let output = beehive().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "up", "serve", "replay", "bench", "migrate", "reindex", "token",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "`{command}` missing from:\n{help}"
        );
    }
}

#[test]
fn token_prints_service_token_alone() {
    let output = beehive()
        .args(["token", "--service"])
        .env("BEEHIVE_AUTH__JWT_SECRET", "cli-test-secret-0123456789")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {stdout:?}");

    let mut config = Config::default();
    config.auth.jwt_secret = "cli-test-secret-0123456789".to_owned();
    let authenticator = Authenticator::from_config(&config.auth).unwrap();
    assert_eq!(authenticator.verify(lines[0]).unwrap(), Caller::Service);
}

#[test]
fn invalid_config_names_key() {
    let output = beehive()
        .args(["token", "--service"])
        .env("BEEHIVE_AUTH__MODE", "sometimes")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth.mode"), "{stderr}");
}

#[tokio::test]
async fn reindex_rebuilds_search_index() {
    use beehive_generated::entity::messages;
    use beehive_generated::migration::MessageMigrator;
    use beehive_runtime::db::{PoolOptions, connect};
    use beehive_runtime::search::{SearchEngine, SearchQuery, TantivyEngine};
    use sea_orm::{ActiveModelTrait, ActiveValue};

    let data = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: data.path().to_owned(),
        ..Config::default()
    };
    let db = connect(&config.database_url(), &PoolOptions::default())
        .await
        .unwrap();
    db.migrate::<MessageMigrator>().await.unwrap();
    let now = chrono::Utc::now();
    let rows = [
        (1, 1, "reindex walrus one"),
        (2, 2, "walrus.png"),
        (3, 1, "reindex walrus two"),
    ];
    for (seq, content_type, content) in rows {
        messages::ActiveModel {
            id: ActiveValue::NotSet,
            conversation_id: ActiveValue::Set(7),
            sender_id: ActiveValue::Set(1),
            seq: ActiveValue::Set(seq),
            content_type: ActiveValue::Set(content_type),
            content: ActiveValue::Set(content.to_owned()),
            extra_data: ActiveValue::Set(None),
            status: ActiveValue::Set(0),
            client_msg_id: ActiveValue::Set(None),
            created_at: ActiveValue::Set(now),
        }
        .insert(&db.connection)
        .await
        .unwrap();
    }
    drop(db);

    let output = beehive()
        .arg("reindex")
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("indexed 2 text messages"),
        "stdout: {stdout}"
    );

    let engine = TantivyEngine::open(data.path().join("search")).unwrap();
    let query = SearchQuery {
        keyword: "walrus".to_owned(),
        conversation_ids: vec![7],
        page: 1,
        page_size: 10,
    };
    let page = engine.search(&query).await.unwrap();
    assert_eq!(page.total, 2);
    let mut found: Vec<i64> = page.hits.iter().map(|hit| hit.message_id).collect();
    found.sort_unstable();
    assert_eq!(found, vec![1, 3]);
}

#[test]
fn bench_baseline_runs_in_its_own_process() {
    let output = beehive()
        .args([
            "bench",
            "echo",
            "--baseline",
            "own-process",
            "--calls",
            "300",
            "--warmup",
            "0s",
            "--concurrency",
            "4",
            "--connections",
            "1",
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // With `--json -` standard output contains the JSON alone and the table goes to stderr.
    let stdout = String::from_utf8(output.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ok calls"), "no table on stderr: {stderr}");

    assert_eq!(report["baseline"], "own-process");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["scenario"], "echo");
    assert_eq!(rows[0]["calls"], 300);
    assert_eq!(rows[0]["errors"], serde_json::json!({}));

    let rss = rows[0]["server_rss"]["current_bytes"].as_u64().unwrap();
    assert!(rss > 0, "no RSS read from the echo-server child");
}

/// Runs `beehive bench` with `args` and returns its output, asserting that it failed before
/// any load: nothing on stdout and no measuring step on stderr.
fn bench_rejected(args: &[&str], envs: &[(&str, String)]) -> (Output, String) {
    let output = beehive()
        .arg("bench")
        .args(args)
        .envs(envs.iter().map(|(key, value)| (*key, value)))
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?} wrote to stdout");
    assert!(!stderr.contains("measuring"), "{args:?} ran load: {stderr}");
    (output, stderr)
}

/// Returns a loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn bench_rejects_zero_values() {
    for (option, value) in [
        ("--duration", "0s"),
        ("--calls", "0"),
        ("--concurrency", "0"),
        ("--connections", "0"),
    ] {
        let (output, stderr) = bench_rejected(&["echo", option, value], &[]);
        assert_eq!(output.status.code(), Some(2), "{option}: {stderr}");
        assert!(stderr.contains(option), "{option}: {stderr}");
    }
}

#[test]
fn bench_rejects_duration_without_unit() {
    let (_, stderr) = bench_rejected(&["echo", "--duration", "10"], &[]);
    assert!(stderr.contains("--duration"), "{stderr}");
    assert!(stderr.contains("missing unit"), "{stderr}");
}

#[test]
fn bench_rejects_options_of_other_mode() {
    let (_, stderr) = bench_rejected(
        &["echo", "--data-dir", "/tmp", "--target", "127.0.0.1"],
        &[],
    );
    assert!(stderr.contains("--data-dir"), "{stderr}");
    for option in [["--server-pid", "1"], ["--outbox", "/tmp"]] {
        let mut args = vec!["echo"];
        args.extend(option);
        let (_, stderr) = bench_rejected(&args, &[]);
        assert!(stderr.contains(option[0]), "{stderr}");
        assert!(stderr.contains("--target"), "{stderr}");
    }
}

#[test]
fn bench_rejects_more_connections_than_clients() {
    let (_, stderr) = bench_rejected(&["echo", "--concurrency", "2", "--connections", "3"], &[]);
    assert!(stderr.contains("--connections 3"), "{stderr}");
    assert!(stderr.contains("--concurrency 2"), "{stderr}");
}

#[test]
fn bench_rejects_missing_server_pid() {
    let mut exited = Command::new("true").spawn().unwrap();
    exited.wait().unwrap();
    let pid = exited.id().to_string();
    let (_, stderr) = bench_rejected(
        &["echo", "--target", "127.0.0.1", "--server-pid", &pid],
        &[],
    );
    assert!(stderr.contains(&format!("--server-pid {pid}")), "{stderr}");
}

#[test]
fn bench_rejects_target_with_port() {
    let (_, stderr) = bench_rejected(&["echo", "--target", "127.0.0.1:18001"], &[]);
    assert!(
        stderr.contains("--target `127.0.0.1:18001` contains a port"),
        "{stderr}"
    );
    assert!(stderr.contains("services.<name>.listen"), "{stderr}");
}

#[test]
fn bench_rejects_unreachable_target() {
    let port = closed_port();
    let started = Instant::now();
    let (_, stderr) = bench_rejected(
        &["echo", "--target", "127.0.0.1"],
        &[(
            "BEEHIVE_SERVICES__USER__LISTEN",
            format!("127.0.0.1:{port}"),
        )],
    );
    assert!(stderr.contains("--target 127.0.0.1"), "{stderr}");
    assert!(
        stderr.contains(&format!("user service at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn bench_rejects_unwritable_json_path() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("missing").join("report.json");
    let path = path.to_str().unwrap();
    let (_, stderr) = bench_rejected(&["echo", "--json", path], &[]);
    assert!(stderr.contains(&format!("--json {path}")), "{stderr}");
}

#[test]
fn bench_rejects_missing_dataset() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("dataset.json");
    let path = path.to_str().unwrap();
    let (_, stderr) = bench_rejected(&["search", "--dataset", path], &[]);
    assert!(stderr.contains(&format!("--dataset {path}")), "{stderr}");
    assert!(!folder.path().join("dataset.json").exists());
}

#[test]
fn bench_rejects_missing_outbox() {
    // Six open ports stand in for the target's services: the check only connects.
    let listeners: Vec<TcpListener> = (0..6)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut envs: Vec<(&str, String)> = [
        "BEEHIVE_SERVICES__USER__LISTEN",
        "BEEHIVE_SERVICES__FRIEND__LISTEN",
        "BEEHIVE_SERVICES__MESSAGE__LISTEN",
        "BEEHIVE_SERVICES__CHAT__LISTEN",
        "BEEHIVE_SERVICES__FILE__LISTEN",
        "BEEHIVE_SERVICES__SEARCH__LISTEN",
    ]
    .into_iter()
    .zip(&listeners)
    .map(|(key, listener)| (key, listener.local_addr().unwrap().to_string()))
    .collect();
    let data = tempfile::tempdir().unwrap();
    envs.push(("BEEHIVE_DATA_DIR", data.path().to_str().unwrap().to_owned()));
    let started = Instant::now();
    let (_, stderr) = bench_rejected(&["get-user", "--target", "127.0.0.1"], &envs);
    let outbox = data.path().join("outbox");
    assert!(
        stderr.contains(&format!("--outbox {}", outbox.display())),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn bench_help_hides_build_paths() {
    let output = beehive().args(["bench", "--help"]).output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains(env!("CARGO_MANIFEST_DIR")), "{help}");
    assert!(help.contains("shared/data/chitchat/dataset.json"), "{help}");
    assert!(help.contains("bcrypt_cost"), "{help}");
}

/// Starts `beehive bench` with stderr piped; the receiver gets its stderr lines.
fn spawn_bench(
    args: &[&str],
    envs: &[(&str, &std::path::Path)],
) -> (Child, mpsc::Receiver<String>) {
    let mut child = beehive()
        .arg("bench")
        .args(args)
        .envs(envs.iter().copied())
        .env("BEEHIVE_AUTH__BCRYPT_COST", "4")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, receiver)
}

/// Collects stderr lines until one contains `marker`; panics after a minute.
fn wait_for_line(lines: &mpsc::Receiver<String>, marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(marker);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(err) => panic!("no `{marker}` on stderr ({err}): {seen:?}"),
        }
    }
}

/// Sends `signal` to `child` by its pid and waits for it to exit, for at most 30 s. Returns the
/// exit status and the rest of stderr.
fn signal_and_wait(
    child: &mut Child,
    signal: &str,
    lines: &mpsc::Receiver<String>,
) -> (std::process::ExitStatus, Vec<String>) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, lines.iter().collect());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let stderr: Vec<String> = lines.try_iter().collect();
            panic!("bench still running 30 s after {signal}; stderr: {stderr:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bench_interrupt_removes_temporary_folder() {
    let temp = tempfile::tempdir().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let json = reports.path().join("report.json");
    let (mut child, lines) = spawn_bench(
        &[
            "get-user",
            "--json",
            json.to_str().unwrap(),
            "--duration",
            "3s",
            "--warmup",
            "0s",
            "--concurrency",
            "2",
            "--connections",
            "1",
        ],
        &[("TMPDIR", temp.path())],
    );
    // The in-process deployment and its temporary folder exist from the fixture on; the
    // signal arrives within the scenario's 3 s.
    let _ = wait_for_line(&lines, "measuring get-user");
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);
    assert!(json.exists(), "--json file not created before the load");

    let (status, stderr) = signal_and_wait(&mut child, "-INT", &lines);
    assert!(!status.success());
    let last = stderr.last().map(String::as_str).unwrap_or_default();
    assert!(last.contains("interrupted by SIGINT"), "{stderr:?}");

    // The baseline had finished, so its row is shown; the scenario's is not.
    let partial = stderr
        .iter()
        .position(|line| line == "measured before the interruption:")
        .expect("no partial report on stderr");
    let rows: Vec<&String> = stderr[partial..]
        .iter()
        .filter(|line| line.starts_with("echo ") || line.starts_with("get-user "))
        .collect();
    assert_eq!(rows.len(), 1, "{stderr:?}");
    assert!(rows[0].starts_with("echo "), "{stderr:?}");

    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(stdout, "");

    let left: Vec<_> = std::fs::read_dir(temp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!json.exists(), "the empty --json file was left behind");
}

#[test]
fn bench_terminate_stops_the_baseline() {
    let (mut child, lines) = spawn_bench(&["echo", "--duration", "60s", "--warmup", "0s"], &[]);
    let _ = wait_for_line(&lines, "measuring the echo baseline");
    let started = Instant::now();
    let (status, stderr) = signal_and_wait(&mut child, "-TERM", &lines);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!status.success());
    let last = stderr.last().map(String::as_str).unwrap_or_default();
    assert!(last.contains("interrupted by SIGTERM"), "{stderr:?}");
}
