//! Time of the proto half of `cargo xtask gen` for the workspace's protos (the six services and
//! Beehive's options), in memory: parse, lower, prost-build and tonic, Beehive's emitters.
//!
//! Run with `cargo bench -p beehive-codegen --bench generate`.

use std::collections::BTreeSet;
use std::path::Path;

use beehive_codegen::proto::{self, ProtoInput, ProtoSource};
use criterion::{Criterion, criterion_group, criterion_main};

fn workspace_protos() -> Vec<ProtoSource> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits inside the workspace")
        .join("proto");
    let mut sources = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.expect("proto/ is readable");
        if entry.path().extension().and_then(|e| e.to_str()) != Some("proto") {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(&root)
            .expect("walked below proto/");
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        sources.push(ProtoSource {
            path: parts.join("/"),
            text: std::fs::read_to_string(entry.path()).expect("a UTF-8 proto"),
        });
    }
    sources
}

fn generate(c: &mut Criterion) {
    let input = ProtoInput {
        sources: workspace_protos(),
        service_crates: ["chat", "file", "friend", "message", "search", "user"]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
        with_schema: true,
    };
    c.bench_function("proto_half_six_services", |b| {
        b.iter(|| proto::generate(&input).expect("the workspace protos generate"))
    });
    c.bench_function("parse_six_services", |b| {
        b.iter(|| proto::parse::parse(&input.sources).expect("the workspace protos parse"))
    });
}

criterion_group!(benches, generate);
criterion_main!(benches);
