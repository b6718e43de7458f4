//! The built `beehive` binary: its help and `token --service`. Having this test also makes
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
    for command in ["up", "serve", "replay", "bench", "migrate", "token"] {
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
