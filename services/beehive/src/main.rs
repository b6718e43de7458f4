use clap::Parser;

use beehive::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config = beehive::config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Bench(args) => beehive::bench::run(args).await,
        Command::Token(_) => {
            println!("{}", beehive::token::service_token(&config)?);
            Ok(())
        }
        Command::Up(_) | Command::Serve(_) | Command::Replay(_) | Command::Migrate => {
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
