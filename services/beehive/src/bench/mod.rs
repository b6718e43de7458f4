//! `beehive bench`: closed-loop load over real gRPC connections, reported against the bare tonic
//! baseline measured in the same run.

pub mod echo;
pub mod harness;
pub mod report;

use std::io::Write as _;

use anyhow::Context as _;

use self::echo::EchoServer;
use self::harness::{LoadOptions, LoadResult, Stop, run_load};
use self::report::{BenchReport, ReportRow};
use crate::cli::{BenchArgs, Scenario};
pub use crate::clients::connect_channels;
use crate::rss;

/// Runs `beehive bench` and prints the report.
pub async fn run(args: BenchArgs, _config: beehive_runtime::config::Config) -> anyhow::Result<()> {
    let options = LoadOptions {
        concurrency: args.concurrency.max(1),
        warmup: args.warmup,
        stop: match args.calls {
            Some(calls) => Stop::Calls(calls),
            None => Stop::After(args.duration),
        },
        progress: true,
    };

    let baseline = measure_echo(&options, args.connections).await?;
    let mut rows = vec![ReportRow::new(
        Scenario::Echo.as_str(),
        &baseline,
        rss::read(None),
    )];

    if args.scenario != Scenario::Echo {
        anyhow::bail!(
            "scenario `{}` needs the six services, which this build does not serve yet",
            args.scenario.as_str()
        );
    }

    let baseline_row = rows[0].clone();
    for row in rows.iter_mut().skip(1) {
        row.compare_to(&baseline_row);
    }
    let report = BenchReport {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        concurrency: options.concurrency,
        connections: args.connections.max(1),
        target: args
            .target
            .clone()
            .unwrap_or_else(|| "in-process".to_owned()),
        rows,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        if path.as_os_str() == "-" {
            println!("{json}");
        } else {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("failed to create {}", path.display()))?;
            writeln!(file, "{json}")?;
        }
    }
    Ok(())
}

/// Measures the baseline: a bare tonic Health server in this process.
async fn measure_echo(options: &LoadOptions, connections: usize) -> anyhow::Result<LoadResult> {
    let server = EchoServer::start().await?;
    let channels = connect_channels(&format!("http://{}", server.addr), connections).await?;
    let result = run_load(Scenario::Echo.as_str(), echo::check_call(channels), options).await;
    server.stop().await;
    Ok(result)
}
