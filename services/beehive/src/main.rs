use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

use beehive::cli::{Cli, Command, ServeArgs, UpArgs};
use beehive::stack::{DiscoveryMode, Stack, StackOptions};
use beehive_runtime::config::Config;

/// mimalloc instead of the system allocator: with glibc's, malloc and free took about a sixth
/// of the server's CPU under the send benchmark (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = beehive::config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Up(args) => up(args, config).await,
        Command::Serve(args) => serve(args, config).await,
        Command::Replay(args) => {
            init_tool_logs();
            beehive::replay::run(args, config).await.map(|_| ())
        }
        Command::Bench(args) => {
            init_tool_logs();
            beehive::bench::run(args, config).await
        }
        Command::Migrate => {
            init_tool_logs();
            beehive::stack::migrate_all(&config).await
        }
        Command::Reindex(args) => {
            init_tool_logs();
            let mut config = config;
            if let Some(dir) = args.data_dir {
                config.data_dir = dir;
            }
            beehive::stack::reindex(&config, args.batch_size).await
        }
        Command::EchoServer => beehive::bench::echo::serve_until_stdin_closes().await,
        Command::Token(_) => {
            println!("{}", beehive::token::service_token(&config)?);
            Ok(())
        }
    }
}

/// `beehive up`: all six services in this process until SIGINT or SIGTERM.
async fn up(args: UpArgs, mut config: Config) -> anyhow::Result<()> {
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    let _telemetry = beehive_runtime::telemetry::init(&config, "up")
        .context("failed to set up logging and tracing (log.*, telemetry.*)")?;
    let options = StackOptions {
        bus_exchange: args.bus_exchange,
        ..StackOptions::all()
    };
    let stack = Stack::start(Arc::new(config), options).await?;
    println!("{}", stack.banner());
    beehive_runtime::server::shutdown_signal().await;
    stack.shutdown().await;
    Ok(())
}

/// `beehive serve <svc>`: one service, registered in the configured discovery.
async fn serve(args: ServeArgs, config: Config) -> anyhow::Result<()> {
    let service = args.service;
    let _telemetry = beehive_runtime::telemetry::init(&config, service.as_str())
        .context("failed to set up logging and tracing (log.*, telemetry.*)")?;
    if config.discovery.etcd_endpoints.is_empty() {
        tracing::warn!(
            key = "discovery.etcd_endpoints",
            "no etcd endpoints configured: peers are found at the static addresses of discovery.static"
        );
    }
    let options = StackOptions {
        services: vec![service],
        discovery: DiscoveryMode::Configured,
        admin: true,
        bus_exchange: args.bus_exchange,
    };
    let stack = Stack::start(Arc::new(config), options).await?;
    println!("{}", stack.banner());
    beehive_runtime::server::shutdown_signal().await;
    stack.shutdown().await;
    Ok(())
}

/// Logs of the client-side commands go to standard error at WARN, so progress bars and the
/// report stay readable; `RUST_LOG` overrides the filter.
fn init_tool_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
