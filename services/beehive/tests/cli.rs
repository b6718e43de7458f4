//! The built `beehive` binary: its help, `token --service` and `reindex`. Having this test also makes
//! `cargo test --workspace` build the binary that the distributed end-to-end test spawns.

use std::process::Command;

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
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json_start = stdout.find('{').expect("no JSON report on stdout");
    let report: serde_json::Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    assert_eq!(report["baseline"], "own-process");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["scenario"], "echo");
    assert_eq!(rows[0]["calls"], 300);
    assert_eq!(rows[0]["errors"], serde_json::json!({}));
    let rss = rows[0]["server_rss"]["current_bytes"].as_u64().unwrap();
    assert!(rss > 0, "no RSS read from the echo-server child");
}
