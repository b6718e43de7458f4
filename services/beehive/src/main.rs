use clap::Parser;

use beehive::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Bench(args) => beehive::bench::run(args).await,
        Command::Up(_)
        | Command::Serve(_)
        | Command::Replay(_)
        | Command::Migrate
        | Command::Token(_) => {
            anyhow::bail!(
                "this command needs the six services, which this build does not serve yet"
            )
        }
    }
}

/// Logs to standard error; `RUST_LOG` sets the filter (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
