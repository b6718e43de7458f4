//! `beehive replay`: drives the chitchat corpus through the public RPCs. See [`plan`] for how
//! the corpus maps onto users, friendships, conversations and messages.

pub mod api;
pub mod grpc;
pub mod plan;
pub mod run;
pub mod summary;

#[cfg(test)]
mod fake;

use std::path::PathBuf;
use std::sync::Arc;

use beehive_runtime::config::Config;

use self::grpc::GrpcReplayApi;
use self::plan::ReplayPlan;
use self::run::{ReplayOptions, ReplaySummary};
use crate::cli::{ReplayArgs, ServiceName};
use crate::clients::{Clients, Endpoints};
use crate::corpus::Corpus;
use crate::stack::{DiscoveryMode, OUTBOX_DIR, Stack, StackOptions};

/// HTTP/2 connections per service a replay spreads its calls over.
const CONNECTIONS: usize = 4;

/// Runs `beehive replay`: against `--target`, or against a deployment started in this process
/// on free ports. Prints the summary and returns it.
pub async fn run(args: ReplayArgs, mut config: Config) -> anyhow::Result<ReplaySummary> {
    let mut corpus = Corpus::load(&args.dataset)?;
    if let Some(limit) = args.limit {
        corpus.truncate(limit);
    }
    let plan = Arc::new(ReplayPlan::build(&corpus));
    drop(corpus);
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    let options = ReplayOptions {
        concurrency: args.concurrency.max(1),
        progress: true,
    };

    let summary = match &args.target {
        Some(host) => {
            let endpoints = Endpoints::on_host(host, &config);
            let outbox = args
                .outbox
                .unwrap_or_else(|| config.data_dir.join(OUTBOX_DIR));
            replay_against(&endpoints, outbox, plan, &options).await?
        }
        None => {
            let stack = start_in_process(config).await?;
            eprintln!("{}", stack.banner());
            let addresses = stack
                .addresses()
                .ok_or_else(|| anyhow::anyhow!("the in-process deployment lacks a service"))?;
            let outbox = args.outbox.unwrap_or_else(|| stack.outbox_dir());
            let result = replay_against(
                &Endpoints::from_addresses(addresses),
                outbox,
                plan,
                &options,
            )
            .await;
            stack.shutdown().await;
            result?
        }
    };
    println!("{}", summary::render(&summary));
    Ok(summary)
}

/// Replays `plan` against the deployment at `endpoints`, reading codes from `outbox`.
pub async fn replay_against(
    endpoints: &Endpoints,
    outbox: PathBuf,
    plan: Arc<ReplayPlan>,
    options: &ReplayOptions,
) -> anyhow::Result<ReplaySummary> {
    let clients = Clients::connect(endpoints, CONNECTIONS).await?;
    let api = GrpcReplayApi::new(clients, outbox);
    Ok(run::replay(api, plan, options).await)
}

/// Starts all six services on free loopback ports, without the admin server.
pub async fn start_in_process(mut config: Config) -> anyhow::Result<Stack> {
    for service in ServiceName::ALL {
        if let Some(settings) = config.service_mut(service.as_str()) {
            settings.listen.set_port(0);
        }
    }
    let options = StackOptions {
        admin: false,
        discovery: DiscoveryMode::InProcess,
        ..StackOptions::all()
    };
    Stack::start(Arc::new(config), options).await
}
