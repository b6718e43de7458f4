//! Command-line interface of the `beehive` binary.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "beehive", version, about = "Beehive instant-messaging backend")]
pub struct Cli {
    /// Configuration file; without it `etc/beehive.yaml` is read when present. `BEEHIVE_`
    /// environment variables override both (`BEEHIVE_DATABASE__URL` sets `database.url`).
    #[arg(long, global = true, env = "BEEHIVE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs all six services in one process (ports 8001-8006 by default).
    Up(UpArgs),
    /// Runs one service, registered in etcd, finding its peers there.
    Serve(ServeArgs),
    /// Drives a chitchat corpus through the public RPCs.
    Replay(ReplayArgs),
    /// Measures a scenario under closed-loop load against a bare tonic baseline.
    Bench(BenchArgs),
    /// Applies every pending database migration and exits.
    Migrate,
    /// Rebuilds the search index from the stored text messages. With the embedded index, stop
    /// `beehive up` first: only one process may write the index.
    Reindex(ReindexArgs),
    /// Prints a token on standard output, alone on its line.
    Token(TokenArgs),
    /// Serves the bench baseline (bare tonic Health) on a free loopback port, prints the
    /// address, and stops when standard input closes. `beehive bench` starts it.
    #[command(hide = true)]
    EchoServer,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Folder of the embedded backends (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// RabbitMQ topic exchange of this deployment's events (default `beehive.message`).
    #[arg(long, value_name = "NAME")]
    pub bus_exchange: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    User,
    Friend,
    Message,
    Chat,
    File,
    Search,
}

impl ServiceName {
    /// The six services in port order.
    pub const ALL: [ServiceName; 6] = [
        Self::User,
        Self::Friend,
        Self::Message,
        Self::Chat,
        Self::File,
        Self::Search,
    ];

    /// Position in [`ServiceName::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Friend => "friend",
            Self::Message => "message",
            Self::Chat => "chat",
            Self::File => "file",
            Self::Search => "search",
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    pub service: ServiceName,

    /// RabbitMQ topic exchange of this deployment's events (default `beehive.message`); every
    /// process of one deployment must use the same.
    #[arg(long, value_name = "NAME")]
    pub bus_exchange: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The corpus: chitchat's `dataset.json`.
    pub dataset: PathBuf,

    /// Replays only the first N conversations of the file.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Replays against a running deployment at this host (services on ports 8001-8006, or
    /// the configured listen ports) instead of starting one in this process.
    #[arg(long, value_name = "HOST")]
    pub target: Option<String>,

    /// Mail outbox folder to read verification codes from; defaults to `<data_dir>/outbox`.
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,

    /// Folder of the in-process deployment's embedded backends (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Calls in flight at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Bare tonic Health/Check with no Beehive layers: the baseline.
    Echo,
    /// GetUserInfo of a user whose row is cached.
    GetUser,
    /// Login with a correct password (one bcrypt verification per call). The login bound
    /// printed after it hashes at this process's `auth.bcrypt_cost`, so with `--target` give
    /// the server's configuration.
    Login,
    /// SendMessage in 1:1 chats, one chat per client.
    Send,
    /// GetMessages, newest page of a chat with history.
    History,
    /// SearchMessages over indexed chat messages.
    Search,
    /// Multipart upload: init, parts, complete.
    Upload,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::GetUser => "get-user",
            Self::Login => "login",
            Self::Send => "send",
            Self::History => "history",
            Self::Search => "search",
            Self::Upload => "upload",
        }
    }
}

/// Maximum `--connections` a run may open per service.
pub const MAX_CONNECTIONS: usize = 1024;
/// Maximum `--concurrency` clients a run may start.
pub const MAX_CONCURRENCY: usize = 1_000_000;

#[derive(Debug, Args)]
#[command(
    after_help = "The `calls` and `calls/s` columns count successful calls. Failed calls \
are listed by gRPC code in the `errors` column, and when any call of the measured period failed \
the command exits with status 1 after printing the report."
)]
pub struct BenchArgs {
    pub scenario: Scenario,

    /// Benchmarks a running deployment on this host (a name or an IP address, no port) instead
    /// of one started in this process. The ports are those of `services.<name>.listen` in the
    /// configuration.
    #[arg(long, value_name = "HOST")]
    pub target: Option<String>,

    /// Measured period with its unit, e.g. `10s`, `500ms` or `2m`; ignored when `--calls` is
    /// given.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "TIME")]
    pub duration: Duration,

    /// Stops after this many calls instead of after `--duration`.
    #[arg(long, value_name = "N", value_parser = parse_call_count)]
    pub calls: Option<u64>,

    /// Load applied before measuring, with its unit (`0s` for none).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "TIME")]
    pub warmup: Duration,

    /// Concurrent clients, each with one call in flight.
    #[arg(
        long,
        default_value_t = 64,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=MAX_CONCURRENCY as u64)
    )]
    pub concurrency: usize,

    /// HTTP/2 connections the clients share, per service; at most `--concurrency`.
    #[arg(
        long,
        default_value_t = 4,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=MAX_CONNECTIONS as u64)
    )]
    pub connections: usize,

    /// Process id of the `--target` server, for the RSS column.
    #[arg(long, value_name = "PID", requires = "target")]
    pub server_pid: Option<u32>,

    /// Also writes the report as JSON to this file. With `-` the JSON goes to standard output
    /// and the table to standard error.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Folder of the in-process deployment's embedded backends; a temporary folder, removed
    /// afterwards, by default.
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    pub data_dir: Option<PathBuf>,

    /// Mail outbox of the `--target` deployment, for the fixture's verification codes.
    /// Defaults to `<data_dir>/outbox`, where `data_dir` is the setting of this process's
    /// configuration (`--config`, `BEEHIVE_DATA_DIR`), which should match the server's.
    #[arg(long, value_name = "DIR", requires = "target")]
    pub outbox: Option<PathBuf>,

    /// Chitchat corpus whose messages the `search` scenario indexes first. Defaults to
    /// `$BEEHIVE_CHITCHAT_DATASET`, else to `shared/data/chitchat/dataset.json` in the folder
    /// that contains the checkout the binary was built from.
    #[arg(
        long,
        value_name = "PATH",
        default_value_os_t = crate::corpus::dataset_path(),
        hide_default_value = true
    )]
    pub dataset: PathBuf,

    /// Process of the echo baseline server. `own-process` starts it as a child process, so
    /// that it pays the same cross-process costs as a `--target` server. `in-process` runs it
    /// beside the load generator, like the deployment started without `--target`. Defaults to
    /// `own-process` with `--target` and `in-process` without.
    #[arg(long, value_name = "WHERE")]
    pub baseline: Option<BaselinePlace>,
}

/// Process in which `beehive bench` runs its echo baseline server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BaselinePlace {
    InProcess,
    OwnProcess,
}

impl BaselinePlace {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::OwnProcess => "own-process",
        }
    }
}

impl BenchArgs {
    /// Returns the baseline's process: as given, else the same kind as the scenario's server.
    pub fn baseline_place(&self) -> BaselinePlace {
        self.baseline.unwrap_or(match self.target {
            Some(_) => BaselinePlace::OwnProcess,
            None => BaselinePlace::InProcess,
        })
    }
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Messages read from the database and indexed per batch.
    #[arg(long, default_value_t = beehive_search::reindex::DEFAULT_BATCH_SIZE)]
    pub batch_size: u64,
    /// Folder of the embedded backends (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Issues a service token (`role: service`), as the services use among themselves.
    #[arg(long, required = true)]
    pub service: bool,
}

/// Parses `250ms`, `10s` or `2m`. A number without a unit is rejected rather than read as
/// seconds, so that `--duration 500` does not silently run for eight minutes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let Some(split) = text.find(|c: char| !c.is_ascii_digit() && c != '.') else {
        return Err(format!(
            "missing unit in duration `{text}`: write e.g. {text}s, {text}ms or {text}m"
        ));
    };
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected e.g. 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration unit in `{text}`: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("invalid duration `{text}`: {err}"))
}

/// Parses a number of calls of at least 1.
pub fn parse_call_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(calls) => Ok(calls),
        Err(err) => Err(format!("invalid number of calls `{text}`: {err}")),
    }
}

/// Parses a duration as [`parse_duration`] does and rejects zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration `{}`: must be above zero",
            text.trim()
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn duration_without_unit_is_rejected() {
        let err = parse_duration("10").unwrap_err();
        assert!(err.contains("missing unit"), "{err}");
        assert!(err.contains("10s"), "{err}");
    }

    #[test]
    fn zero_duration_is_rejected() {
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn token_requires_service_flag() {
        assert!(Cli::try_parse_from(["beehive", "token"]).is_err());
        assert!(Cli::try_parse_from(["beehive", "token", "--service"]).is_ok());
    }

    #[test]
    fn bench_scenario_names() {
        let cli = Cli::try_parse_from(["beehive", "bench", "get-user", "--calls", "10"]).unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("expected bench");
        };
        assert_eq!(args.scenario, Scenario::GetUser);
        assert_eq!(args.calls, Some(10));
    }
}
