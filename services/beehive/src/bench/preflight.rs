//! Checks of `beehive bench`'s arguments that need the file system or the network, made before
//! any load runs, so that a wrong argument fails in a second rather than after the baseline.

use std::fs::{File, OpenOptions};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use beehive_runtime::config::Config;

use crate::cli::{BenchArgs, Scenario, ServiceName};
use crate::stack::OUTBOX_DIR;

/// How long the check of `--target` waits for each service's port to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Destination of the JSON report.
pub enum JsonSink {
    Stdout,
    /// A file opened before the load, so that an unwritable path fails first. An existing
    /// file is not truncated until the report is written.
    File {
        path: PathBuf,
        file: File,
        /// Whether the checks created the file, which is then removed if no report comes.
        created: bool,
    },
}

/// Values resolved by the checks: the target host in URI form, the outbox and the JSON sink.
pub struct Checked {
    /// The `--target` host as it goes into a URI (an IPv6 address in brackets).
    pub target_host: Option<String>,
    /// The mail outbox of the `--target` deployment, when the scenario needs one.
    pub outbox: Option<PathBuf>,
    pub json: Option<JsonSink>,
}

impl Checked {
    /// Removes the `--json` file created by the checks, for a run that ends without a report.
    pub fn discard_json_file(self) {
        if let Some(JsonSink::File {
            path,
            file,
            created: true,
        }) = self.json
        {
            drop(file);
            if let Err(err) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %err, "failed to remove the empty --json file");
            }
        }
    }
}

/// Checks the arguments that clap cannot: option combinations, files, the target's ports.
pub async fn check(args: &BenchArgs, config: &Config) -> anyhow::Result<Checked> {
    if args.connections > args.concurrency {
        anyhow::bail!(
            "--connections {} is more than --concurrency {}: each connection needs at least \
             one client, so lower --connections or raise --concurrency",
            args.connections,
            args.concurrency
        );
    }
    if let Some(pid) = args.server_pid {
        check_process(pid)?;
    }
    if args.scenario == Scenario::Search && !args.dataset.is_file() {
        anyhow::bail!(
            "--dataset {}: file not found; the search scenario indexes the chitchat corpus \
             `dataset.json` from it",
            args.dataset.display()
        );
    }

    let mut target_host = None;
    let mut outbox = None;
    if let Some(target) = &args.target {
        let host = parse_target(target)?;
        probe_target(&host, config).await?;
        if args.scenario != Scenario::Echo {
            outbox = Some(check_outbox(args.outbox.as_deref(), config)?);
        }
        target_host = Some(host);
    }

    let json = match &args.json {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(JsonSink::Stdout),
        Some(path) => {
            let (file, created) = open_report_file(path).with_context(|| {
                format!("--json {}: cannot create the report file", path.display())
            })?;
            Some(JsonSink::File {
                path: path.clone(),
                file,
                created,
            })
        }
    };
    Ok(Checked {
        target_host,
        outbox,
        json,
    })
}

/// Opens `path` for writing without truncating it, creating it when missing. Returns whether
/// it was created.
fn open_report_file(path: &Path) -> std::io::Result<(File, bool)> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().write(true).open(path)?;
            Ok((file, false))
        }
        Err(err) => Err(err),
    }
}

/// Fails unless a process with id `pid` runs, where `/proc` can tell.
fn check_process(pid: u32) -> anyhow::Result<()> {
    let proc = Path::new("/proc");
    if proc.join("self").exists() && !proc.join(pid.to_string()).exists() {
        anyhow::bail!("--server-pid {pid}: no process with this id is running");
    }
    Ok(())
}

/// Turns `--target` into the host part of a URI. It takes a host name or an IP address, with
/// an optional `http://`, and rejects a port because each service's port comes from the
/// configuration.
pub fn parse_target(target: &str) -> anyhow::Result<String> {
    let host = target.trim();
    let host = host.strip_prefix("http://").unwrap_or(host);
    let host = host.strip_suffix('/').unwrap_or(host);
    if host.is_empty() {
        anyhow::bail!("--target `{target}`: missing host; pass e.g. `--target 127.0.0.1`");
    }
    if host.parse::<Ipv6Addr>().is_ok() {
        return Ok(format!("[{host}]"));
    }
    if let Some(bracketed) = host.strip_prefix('[') {
        let Some((address, rest)) = bracketed.split_once(']') else {
            anyhow::bail!("--target `{target}`: `[` without a closing `]`");
        };
        if address.parse::<Ipv6Addr>().is_err() {
            anyhow::bail!("--target `{target}`: `{address}` is not an IPv6 address");
        }
        if let Some(port) = rest.strip_prefix(':') {
            return Err(port_error(target, &format!("[{address}]"), port));
        }
        if !rest.is_empty() {
            anyhow::bail!("--target `{target}`: unexpected `{rest}` after the IPv6 address");
        }
        return Ok(host.to_owned());
    }
    if let Some((name, port)) = host.rsplit_once(':') {
        return Err(port_error(target, name, port));
    }
    let valid = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !valid {
        anyhow::bail!(
            "--target `{target}`: not a host name or IP address; pass e.g. `--target 127.0.0.1`"
        );
    }
    Ok(host.to_owned())
}

fn port_error(target: &str, host: &str, port: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--target `{target}` contains a port (`{port}`): it takes only a host, e.g. \
         `--target {host}`, and each service's port comes from `services.<name>.listen` in the \
         configuration (e.g. BEEHIVE_SERVICES__USER__LISTEN=127.0.0.1:18001)"
    )
}

/// Connects to each service's port at `host`, naming the first address that does not accept.
async fn probe_target(host: &str, config: &Config) -> anyhow::Result<()> {
    for service in ServiceName::ALL {
        let name = service.as_str();
        let port = config
            .service(name)
            .map_or(0, |settings| settings.listen.port());
        if port == 0 {
            anyhow::bail!(
                "--target {host}: services.{name}.listen has port 0 in the configuration, so \
                 the {name} service's port is unknown; pass the server's configuration"
            );
        }
        let address = format!("{host}:{port}");
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address)).await;
        let reason = match connected {
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        };
        anyhow::bail!(
            "--target {host}: cannot connect to the {name} service at {address} (port from \
             services.{name}.listen): {reason}"
        );
    }
    Ok(())
}

/// Returns the outbox folder, `--outbox` or `<data_dir>/outbox`, failing when it is missing.
fn check_outbox(outbox: Option<&Path>, config: &Config) -> anyhow::Result<PathBuf> {
    let (path, origin) = match outbox {
        Some(path) => (path.to_owned(), "given"),
        None => (
            config.data_dir.join(OUTBOX_DIR),
            "the default, <data_dir>/outbox of this process's configuration",
        ),
    };
    if !path.is_dir() {
        anyhow::bail!(
            "--outbox {} ({origin}): folder not found. The fixture reads its verification codes \
             from the mail outbox of the --target deployment; pass that folder with --outbox",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_hosts_are_accepted() {
        assert_eq!(parse_target("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(parse_target("http://localhost/").unwrap(), "localhost");
        assert_eq!(
            parse_target("bench-host.example").unwrap(),
            "bench-host.example"
        );
        assert_eq!(parse_target("::1").unwrap(), "[::1]");
        assert_eq!(parse_target("[::1]").unwrap(), "[::1]");
    }

    #[test]
    fn target_with_port_is_rejected() {
        for target in ["127.0.0.1:18001", "localhost:8001", "[::1]:8001"] {
            let err = parse_target(target).unwrap_err().to_string();
            assert!(err.contains("contains a port"), "{target}: {err}");
            assert!(err.contains("services.<name>.listen"), "{target}: {err}");
        }
    }

    #[test]
    fn malformed_target_is_rejected() {
        for target in ["", "a host", "127.0.0.1/x", "[::1", "[nope]", "[::1]x"] {
            let err = parse_target(target).unwrap_err().to_string();
            assert!(err.starts_with("--target"), "{target}: {err}");
        }
    }

    #[test]
    fn missing_outbox_names_the_option() {
        let empty = tempfile::tempdir().unwrap();
        let missing = empty.path().join("outbox");
        let err = check_outbox(Some(&missing), &Config::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--outbox "), "{err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert_eq!(
            check_outbox(Some(empty.path()), &Config::default()).unwrap(),
            empty.path()
        );
    }

    #[test]
    fn existing_report_file_is_kept_until_written() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("report.json");
        let (_, created) = open_report_file(&path).unwrap();
        assert!(created);
        std::fs::write(&path, "{}").unwrap();
        let (_, created) = open_report_file(&path).unwrap();
        assert!(!created);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
    }
}
