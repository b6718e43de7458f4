//! Measures the tantivy engine on the chitchat corpus: index throughput and search latency.
//!
//! Run with `cargo run --release -p beehive-runtime --example search_corpus`. The corpus path
//! defaults to `../shared/data/chitchat/dataset.json` beside the workspace (`BEEHIVE_CHITCHAT`
//! overrides it). The index is written to a temporary directory.

#[path = "../benches/support/chitchat.rs"]
mod chitchat;

use std::time::{Duration, Instant};

use beehive_runtime::search::{SearchEngine, TantivyEngine};

/// Documents per `index` call, as a bulk indexing consumer would batch them.
const BATCH: usize = 5_000;
/// Search requests measured after indexing.
const QUERIES: usize = 2_000;
/// Conversations each request filters on, like a user with this many chats.
const CONVERSATIONS_PER_QUERY: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = chitchat::corpus_path();
    let documents = chitchat::load_documents(&path);
    println!(
        "corpus: {} messages from {}",
        documents.len(),
        path.display()
    );

    let dir = tempfile::tempdir()?;
    let engine = TantivyEngine::open(dir.path())?;
    let started = Instant::now();
    for batch in documents.chunks(BATCH) {
        engine.index(batch).await?;
    }
    engine.refresh().await?;
    let elapsed = started.elapsed();
    println!(
        "indexing: {} messages in {:.2} s = {:.0} messages/s (including the final commit)",
        documents.len(),
        elapsed.as_secs_f64(),
        documents.len() as f64 / elapsed.as_secs_f64()
    );
    anyhow::ensure!(
        engine.num_docs() == documents.len() as u64,
        "index holds {} documents",
        engine.num_docs()
    );

    let queries = chitchat::sample_queries(&documents, QUERIES, CONVERSATIONS_PER_QUERY, 7);
    // Warm the caches with a first pass that is not measured.
    for query in queries.iter().take(200) {
        engine.search(query).await?;
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(queries.len());
    let mut hits = 0u64;
    for query in &queries {
        let started = Instant::now();
        let page = engine.search(query).await?;
        latencies.push(started.elapsed());
        anyhow::ensure!(page.total >= 1, "{query:?} found nothing");
        hits += page.total;
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "search: {} queries over {} conversations each, {:.1} hits on average; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        queries.len(),
        CONVERSATIONS_PER_QUERY,
        hits as f64 / queries.len() as f64,
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
    );
    Ok(())
}
