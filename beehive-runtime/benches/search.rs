//! Search latency over the full chitchat corpus, and index throughput on a slice of it.

#[path = "support/chitchat.rs"]
mod chitchat;

use std::time::Duration;

use beehive_runtime::search::{SearchEngine, TantivyEngine};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Messages indexed per iteration of the indexing benchmark.
const INDEX_SAMPLE: usize = 20_000;
/// Conversations each search request filters on.
const CONVERSATIONS_PER_QUERY: usize = 50;

fn search(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let documents = chitchat::load_documents(&chitchat::corpus_path());

    let mut group = c.benchmark_group("search");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(INDEX_SAMPLE as u64));
    group.bench_function("index_20k_messages", |b| {
        b.to_async(&runtime).iter(|| async {
            let engine = TantivyEngine::in_memory().expect("index");
            for batch in documents[..INDEX_SAMPLE].chunks(5_000) {
                engine.index(batch).await.expect("index batch");
            }
            engine.refresh().await.expect("commit");
        });
    });
    group.finish();

    let dir = tempfile::tempdir().expect("temp dir");
    let engine = runtime.block_on(async {
        let engine = TantivyEngine::open(dir.path()).expect("index");
        for batch in documents.chunks(5_000) {
            engine.index(batch).await.expect("index batch");
        }
        engine.refresh().await.expect("commit");
        engine
    });
    let queries = chitchat::sample_queries(&documents, 500, CONVERSATIONS_PER_QUERY, 11);

    let mut group = c.benchmark_group("search");
    group.throughput(Throughput::Elements(1));
    group.bench_function("keyword_in_50_conversations", |b| {
        let mut next = 0;
        b.to_async(&runtime).iter(|| {
            let query = &queries[next % queries.len()];
            next += 1;
            let engine = &engine;
            async move { engine.search(query).await.expect("search") }
        });
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
