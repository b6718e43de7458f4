//! Tokenizer throughput on English (chitchat) and Chinese (chatterbot) text.

#[path = "support/chitchat.rs"]
mod chitchat;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tantivy::tokenizer::TokenStream;

/// Chitchat messages tokenized per iteration.
const ENGLISH_SAMPLE: usize = 20_000;

fn chinese_lines() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/chatterbot-chinese");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("chatterbot corpus") {
        let text = std::fs::read_to_string(entry.expect("corpus entry").path()).unwrap_or_default();
        lines.extend(
            text.lines()
                .filter_map(|line| {
                    line.strip_prefix("- - ")
                        .or_else(|| line.strip_prefix("  - "))
                })
                .map(str::to_owned),
        );
    }
    lines
}

fn count_tokens(texts: &[String]) -> usize {
    let mut analyzer = beehive_runtime::search::tokenizer::analyzer();
    let mut count = 0;
    for text in texts {
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            count += 1;
        }
    }
    count
}

fn tokenizer(c: &mut Criterion) {
    let english: Vec<String> = chitchat::load_documents(&chitchat::corpus_path())
        .into_iter()
        .take(ENGLISH_SAMPLE)
        .map(|document| document.content)
        .collect();
    let chinese = chinese_lines();

    let mut group = c.benchmark_group("tokenizer");
    for (name, texts) in [("english", &english), ("chinese", &chinese)] {
        let bytes: usize = texts.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| b.iter(|| count_tokens(texts)));
    }
    group.finish();
}

criterion_group!(benches, tokenizer);
criterion_main!(benches);
