//! Helpers shared by the generator's tests: reading proto folders and naming snapshots.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use beehive_codegen::proto::{ProtoInput, ProtoOutput, ProtoSource};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits inside the workspace")
        .to_path_buf()
}

/// Every `.proto` under `dir`, with `/`-separated paths relative to it, sorted by path.
pub fn read_protos(dir: &Path) -> Vec<ProtoSource> {
    let mut sources = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.expect("the fixture folder is readable");
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("proto") {
            continue;
        }
        let relative = path.strip_prefix(dir).expect("walked below dir");
        let relative: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        sources.push(ProtoSource {
            path: relative.join("/"),
            text: std::fs::read_to_string(path).expect("the proto is UTF-8"),
        });
    }
    sources
}

/// Adds the workspace's `beehive/options.proto` unless the sources carry their own.
pub fn with_options(mut sources: Vec<ProtoSource>) -> Vec<ProtoSource> {
    if sources.iter().all(|s| s.path != "beehive/options.proto") {
        let options = workspace_root().join("proto/beehive/options.proto");
        sources.push(ProtoSource {
            path: "beehive/options.proto".to_owned(),
            text: std::fs::read_to_string(options).expect("proto/beehive/options.proto exists"),
        });
    }
    sources
}

/// Runs the proto half with stubs for every service group.
pub fn generate(sources: Vec<ProtoSource>) -> Result<ProtoOutput, beehive_codegen::proto::Error> {
    let groups: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.path.split('/').next())
        .map(|first| first.trim_end_matches(".proto").to_owned())
        .collect();
    beehive_codegen::proto::generate(&ProtoInput {
        sources,
        service_crates: groups,
        with_schema: false,
    })
}

/// A snapshot name for an output path: `generated/src/pb/mod.rs` → `generated__src__pb__mod.rs`.
pub fn snapshot_name(prefix: &str, path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("{prefix}__{}", parts.join("__"))
}

/// Parses `contents` as a Rust file, failing the test with the file's path.
pub fn assert_parses(path: &Path, contents: &str) {
    if let Err(err) = syn::parse_file(contents) {
        panic!("{} does not parse as Rust: {err}", path.display());
    }
}
