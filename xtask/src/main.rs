//! Workspace tasks: `cargo xtask gen`, `cargo xtask gen --check`, `cargo xtask new-service NAME`.

mod files;
mod gen_cmd;
mod new_service;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Beehive workspace tasks")]
struct Cli {
    /// Workspace root; defaults to the workspace this xtask was built in.
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate `generated/` from `proto/` and `schema/`, and create missing logic stubs.
    Gen {
        /// Regenerate in memory and fail, listing every stale, missing or extra file, instead
        /// of writing.
        #[arg(long)]
        check: bool,
        /// Accept removed, renumbered or retyped fields and removed RPCs.
        #[arg(long)]
        allow_breaking: bool,
    },
    /// Scaffold a service: a proto, a schema file and a crate in `services/NAME`.
    NewService {
        /// Service name: lowercase letters, digits and `_`, starting with a letter.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.root.unwrap_or_else(default_root);
    let outcome = match cli.command {
        Command::Gen {
            check,
            allow_breaking,
        } => gen_cmd::run(
            &root,
            gen_cmd::Mode {
                check,
                allow_breaking,
            },
        ),
        Command::NewService { name } => new_service::run(&root, &name).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
