//! `beehive bench`: closed-loop load over real gRPC connections, reported against the bare tonic
//! baseline measured in the same run.

pub mod echo;
pub mod harness;
mod preflight;
pub mod report;
pub mod scenarios;
mod signals;

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tempfile::TempDir;

use self::echo::{EchoProcess, EchoServer};
use self::harness::{LoadOptions, LoadResult, Stop, run_load};
use self::preflight::{Checked, JsonSink};
use self::report::{BenchReport, LoginBound, ReportRow};
use self::scenarios::Fixture;
use self::signals::Signals;
use crate::cli::{BaselinePlace, BenchArgs, Scenario};
pub use crate::clients::connect_channels;
use crate::clients::{Clients, Endpoints};
use crate::rss;
use crate::stack::Stack;
use beehive_runtime::config::Config;

/// Runs `beehive bench`: checks the arguments, measures the echo baseline, then the scenario
/// against `--target` or a deployment started in this process, and prints the report. SIGINT
/// or SIGTERM stops the run, the in-process deployment and its temporary folder included.
pub async fn run(args: BenchArgs, config: Config) -> anyhow::Result<()> {
    // Registered first, so that a signal at any later point reaches this handler.
    let mut signals = Signals::listen()?;
    let interrupted = |signal: &str| {
        anyhow::anyhow!(
            "bench interrupted by {signal}: the load and the in-process deployment were \
             stopped, and no full report was written"
        )
    };
    let checked = tokio::select! {
        checked = preflight::check(&args, &config) => checked?,
        signal = signals.recv() => return Err(interrupted(signal)),
    };
    let mut in_process = InProcess::default();
    let mut finished_rows = Vec::new();
    let outcome = tokio::select! {
        report = measure(&args, config, &checked, &mut in_process, &mut finished_rows) => report,
        signal = signals.recv() => {
            if !finished_rows.is_empty() {
                let partial = new_report(&args, finished_rows, None);
                eprint!("measured before the interruption:\n{}", partial.table());
            }
            Err(interrupted(signal))
        }
    };
    in_process.stop().await;
    let report = match outcome {
        Ok(report) => report,
        Err(err) => {
            checked.discard_json_file();
            return Err(err);
        }
    };

    let table = report.table();
    let json = serde_json::to_string_pretty(&report)?;
    match checked.json {
        Some(JsonSink::Stdout) => {
            eprint!("{table}");
            println!("{json}");
        }
        Some(JsonSink::File { path, mut file, .. }) => {
            print!("{table}");
            file.set_len(0)
                .and_then(|()| writeln!(file, "{json}"))
                .with_context(|| {
                    format!("--json {}: failed to write the report", path.display())
                })?;
        }
        None => print!("{table}"),
    }
    if let Some(failures) = report.failure_summary() {
        anyhow::bail!(failures);
    }
    Ok(())
}

/// The deployment started in this process, kept outside the measuring future so that it is
/// shut down and its temporary folder removed even when a signal drops that future.
#[derive(Default)]
struct InProcess {
    stack: Option<Stack>,
    temp: Option<TempDir>,
}

impl InProcess {
    /// Shuts the deployment down, then removes its temporary folder.
    async fn stop(&mut self) {
        if let Some(stack) = self.stack.take() {
            stack.shutdown().await;
        }
        if let Some(temp) = self.temp.take() {
            let path = temp.path().to_owned();
            if let Err(err) = temp.close() {
                tracing::warn!(path = %path.display(), error = %err, "failed to remove the temporary data folder");
            }
        }
    }
}

/// Builds the report of `rows` with the run's settings.
fn new_report(
    args: &BenchArgs,
    rows: Vec<ReportRow>,
    login_bound: Option<LoginBound>,
) -> BenchReport {
    BenchReport {
        cores: available_cores(),
        concurrency: args.concurrency,
        connections: args.connections,
        target: args
            .target
            .clone()
            .unwrap_or_else(|| "in-process".to_owned()),
        baseline: args.baseline_place().as_str().to_owned(),
        rows,
        login_bound,
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Measures the baseline and the scenario. A deployment it starts stays in `in_process` until
/// measured, and each measured row is added to `finished_rows`, so that the caller can stop
/// the deployment and show the rows if this future is dropped.
async fn measure(
    args: &BenchArgs,
    mut config: Config,
    checked: &Checked,
    in_process: &mut InProcess,
    finished_rows: &mut Vec<ReportRow>,
) -> anyhow::Result<BenchReport> {
    let options = LoadOptions {
        concurrency: args.concurrency,
        warmup: args.warmup,
        stop: match args.calls {
            Some(calls) => Stop::Calls(calls),
            None => Stop::After(args.duration),
        },
        progress: true,
    };
    let connections = args.connections;

    let place = args.baseline_place();
    eprintln!("measuring the echo baseline ({})", place.as_str());
    let (baseline, baseline_rss) = measure_echo(&options, connections, place).await?;
    let baseline = ReportRow::new(Scenario::Echo.as_str(), &baseline, baseline_rss);
    finished_rows.push(baseline.clone());

    if args.scenario != Scenario::Echo {
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let mut row = match &checked.target_host {
            Some(host) => {
                // The checks resolve an outbox for every scenario but echo.
                let outbox = checked
                    .outbox
                    .as_deref()
                    .context("no mail outbox was resolved for --target")?;
                let endpoints = Endpoints::on_host(host, &config);
                measure_scenario(args, &options, &endpoints, outbox, &run_id).await?
            }
            None => {
                match &args.data_dir {
                    Some(dir) => config.data_dir = dir.clone(),
                    None => {
                        let temp = tempfile::tempdir()
                            .context("failed to create a temporary data folder")?;
                        config.data_dir = temp.path().to_owned();
                        in_process.temp = Some(temp);
                    }
                }
                let stack = in_process
                    .stack
                    .insert(crate::replay::start_in_process(config.clone()).await?);
                let addresses = stack
                    .addresses()
                    .ok_or_else(|| anyhow::anyhow!("the in-process deployment lacks a service"))?;
                let endpoints = Endpoints::from_addresses(addresses);
                let outbox = stack.outbox_dir();
                let row = measure_scenario(args, &options, &endpoints, &outbox, &run_id).await?;
                in_process.stop().await;
                row
            }
        };
        row.compare_to(&baseline);
        finished_rows.push(row);
    }

    let login_bound = match finished_rows.last() {
        Some(row) if args.scenario == Scenario::Login => Some(
            measure_login_bound(
                config.auth.bcrypt_cost,
                available_cores(),
                row.calls_per_second,
            )
            .await?,
        ),
        _ => None,
    };
    let report = new_report(args, finished_rows.clone(), login_bound);
    Ok(report)
}

/// Times bcrypt at `cost` after the load has stopped, in two ways. One hash alone gives the
/// `cores ÷ hash time` ceiling. `cores` threads hashing at once give what the machine delivers
/// when every core hashes, which is less where cores share execution units or other work runs.
/// With `--target` the server's cost may differ from this process's configuration, so pass the
/// same `--config`.
async fn measure_login_bound(
    cost: u32,
    cores: usize,
    logins_per_second: f64,
) -> anyhow::Result<LoginBound> {
    const HASHES: u32 = 4;
    let (single, parallel) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        for _ in 0..HASHES {
            bcrypt::hash("bench password", cost)?;
        }
        let single = started.elapsed();

        let started = std::time::Instant::now();
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..cores)
                .map(|_| {
                    scope.spawn(move || {
                        (0..HASHES).try_for_each(|_| bcrypt::hash("bench password", cost).map(drop))
                    })
                })
                .collect();
            workers.into_iter().map(|worker| worker.join()).collect()
        });
        let parallel = started.elapsed();
        for outcome in outcomes {
            outcome.map_err(|_| anyhow::anyhow!("a bcrypt timing thread panicked"))??;
        }
        Ok::<_, anyhow::Error>((single, parallel))
    })
    .await
    .context("the bcrypt timing task failed")??;
    let hash_secs = single.as_secs_f64() / f64::from(HASHES);
    let bound = cores as f64 / hash_secs;
    let parallel_rate = (cores as f64 * f64::from(HASHES)) / parallel.as_secs_f64();
    Ok(LoginBound {
        bcrypt_cost: cost,
        hash_ms: hash_secs * 1e3,
        logins_per_second: bound,
        ratio: logins_per_second / bound,
        parallel_hashes_per_second: parallel_rate,
        parallel_ratio: logins_per_second / parallel_rate,
    })
}

/// Measures the baseline, a bare tonic Health server, in this process or in a child process,
/// and reads the RSS of the process it ran in.
async fn measure_echo(
    options: &LoadOptions,
    connections: usize,
    place: BaselinePlace,
) -> anyhow::Result<(LoadResult, Option<rss::Rss>)> {
    match place {
        BaselinePlace::InProcess => {
            let server = EchoServer::start().await?;
            let result = load_echo(server.addr, options, connections).await;
            server.stop().await;
            Ok((result?, rss::read(None)))
        }
        BaselinePlace::OwnProcess => {
            let server = EchoProcess::start().await?;
            let result = load_echo(server.addr, options, connections).await;
            let server_rss = server.pid().and_then(|pid| rss::read(Some(pid)));
            server.stop().await;
            Ok((result?, server_rss))
        }
    }
}

/// Runs the echo load against the baseline server at `addr`.
async fn load_echo(
    addr: std::net::SocketAddr,
    options: &LoadOptions,
    connections: usize,
) -> anyhow::Result<LoadResult> {
    let channels = connect_channels(&format!("http://{addr}"), connections).await?;
    Ok(run_load(Scenario::Echo.as_str(), echo::check_call(channels), options).await)
}

/// Builds the fixture, then measures `args.scenario` and reads the server's RSS.
async fn measure_scenario(
    args: &BenchArgs,
    options: &LoadOptions,
    endpoints: &Endpoints,
    outbox: &Path,
    run_id: &str,
) -> anyhow::Result<ReportRow> {
    let clients = Clients::connect(endpoints, args.connections).await?;
    eprintln!("setting up the {} fixture", args.scenario.as_str());
    let fixture = Arc::new(Fixture::build(clients, outbox, run_id).await?);
    let call = fixture.scenario(args.scenario, &args.dataset).await?;
    eprintln!("measuring {}", args.scenario.as_str());
    let result = run_load(args.scenario.as_str(), call, options).await;
    let server_rss = match (&args.target, args.server_pid) {
        (Some(_), Some(pid)) => rss::read(Some(pid)),
        (Some(_), None) => None,
        (None, _) => rss::read(None),
    };
    Ok(ReportRow::new(args.scenario.as_str(), &result, server_rss))
}
