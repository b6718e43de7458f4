//! `cargo xtask gen [--check] [--allow-breaking]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use beehive_codegen::proto::{self, ProtoInput, breaking};

use crate::files;

/// Generated folders the schema half writes; left alone while the schema half emits nothing.
const SCHEMA_DIRS: &[&str] = &["entity", "migration", "model"];

/// Files in `generated/` that are written by hand, never by the generator.
const HAND_WRITTEN: &[&str] = &["generated/Cargo.toml", "generated/README.md"];

#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub check: bool,
    pub allow_breaking: bool,
}

/// Everything one run produces, in memory.
pub struct Generation {
    /// Files under `generated/`, by workspace-relative path.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Logic stubs, by workspace-relative path; written only where nothing exists.
    pub stubs: BTreeMap<PathBuf, String>,
    /// Service crates whose `lib.rs` contains only its doc line, with the `lib.rs` to write.
    pub service_libs: BTreeMap<PathBuf, String>,
    /// Whether the schema half produced files.
    pub with_schema: bool,
    /// Time spent generating from `proto/` and from `schema/`, in memory.
    pub proto_time: Duration,
    pub schema_time: Duration,
    pub breaking: Vec<breaking::BreakingChange>,
}

/// Runs the generator over the workspace at `root`, in memory.
pub fn generate(root: &Path) -> Result<Generation> {
    let sources = files::read_protos(root)?;
    let service_crates: BTreeSet<String> = files::service_crates(root)?.into_iter().collect();
    let schema_started = Instant::now();
    let schema_files = schema_outputs(root)?;
    let schema_time = schema_started.elapsed();
    let with_schema = !schema_files.is_empty();

    let input = ProtoInput {
        sources,
        service_crates: service_crates.clone(),
        with_schema,
    };
    let proto_started = Instant::now();
    let output = proto::generate(&input).context("generating from proto/ failed")?;
    let proto_time = proto_started.elapsed();

    let mut generated: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    for file in output.files.into_iter().chain(schema_files) {
        generated.insert(file.path, file.contents.into_bytes());
    }
    generated.insert(proto::descriptor_path(), output.descriptor_set.clone());

    let stubs = output
        .stubs
        .into_iter()
        .map(|file| (file.path, file.contents))
        .collect();

    let mut service_libs = BTreeMap::new();
    for group in &output.ir.service_groups {
        if !service_crates.contains(&group.name) {
            continue;
        }
        let lib = PathBuf::from("services")
            .join(&group.name)
            .join("src")
            .join("lib.rs");
        let text = std::fs::read_to_string(root.join(&lib)).unwrap_or_default();
        if let Some(doc_line) = lone_doc_line(&text) {
            let contents = proto::service_lib_rs(&output.ir, &group.name, doc_line)?;
            service_libs.insert(lib, contents);
        }
    }

    let old_descriptor = root.join(proto::descriptor_path());
    let breaking = match std::fs::read(&old_descriptor) {
        Ok(old) => breaking::compare(&old, &output.descriptor_set)?,
        Err(_) => Vec::new(),
    };

    Ok(Generation {
        files: generated,
        stubs,
        service_libs,
        with_schema,
        proto_time,
        schema_time,
        breaking,
    })
}

/// Returns the doc line of a `lib.rs` that contains nothing else (`//! ...`), or `None`.
fn lone_doc_line(text: &str) -> Option<&str> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let first = lines.next()?.trim();
    if lines.next().is_some() {
        return None;
    }
    first.strip_prefix("//!").map(str::trim)
}

/// Runs the schema half over `schema/*.schema`.
fn schema_outputs(root: &Path) -> Result<Vec<beehive_codegen::OutputFile>> {
    let mut inputs = Vec::new();
    for path in files::list_files(root, &root.join("schema"))? {
        if path.extension().is_some_and(|ext| ext == "schema") {
            let contents = std::fs::read_to_string(root.join(&path))
                .with_context(|| format!("failed to read {}", path.display()))?;
            inputs.push((path, contents));
        }
    }
    beehive_codegen::schema::generate(&inputs).map_err(|err| anyhow::anyhow!("{err}"))
}

/// Runs `gen` or `gen --check`; returns whether the workspace is (now) up to date.
pub fn run(root: &Path, mode: Mode) -> Result<bool> {
    let started = Instant::now();
    let generation = generate(root)?;
    let generation_time = started.elapsed();

    if !generation.breaking.is_empty() {
        for change in &generation.breaking {
            eprintln!("breaking change: {change}");
        }
        if !mode.allow_breaking {
            bail!(
                "{} breaking change(s) to the contracts against {}; clients built from the \
                 checked-in protos would break. Restore the fields and RPCs, or rerun with \
                 `cargo xtask gen --allow-breaking` if the break is intended",
                generation.breaking.len(),
                proto::descriptor_path().display()
            );
        }
    }

    let problems = differences(root, &generation)?;
    if mode.check {
        if problems.is_empty() {
            println!(
                "generated code is up to date ({} files; {})",
                generation.files.len(),
                timing(&generation, generation_time)
            );
            return Ok(true);
        }
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!(
            "{} generated file(s) differ from the sources; run `cargo xtask gen` and commit the \
             result",
            problems.len()
        );
        return Ok(false);
    }

    let written = write(root, &generation)?;
    println!(
        "generated {} files ({} changed; {}, {} ms with reading and writing)",
        generation.files.len(),
        written,
        timing(&generation, generation_time),
        started.elapsed().as_millis()
    );
    Ok(true)
}

/// "generation took N ms (protos P ms, schema S ms)".
fn timing(generation: &Generation, total: Duration) -> String {
    format!(
        "generation took {} ms (protos {} ms, schema {} ms)",
        total.as_millis(),
        generation.proto_time.as_millis(),
        generation.schema_time.as_millis()
    )
}

/// Lists one line per stale, missing or extra file, none when everything is up to date.
pub fn differences(root: &Path, generation: &Generation) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (path, contents) in &generation.files {
        match std::fs::read(root.join(path)) {
            Ok(existing) if existing == *contents => {}
            Ok(_) => problems.push(format!("stale: {}", path.display())),
            Err(_) => problems.push(format!("missing: {}", path.display())),
        }
    }
    for path in extra_files(root, generation)? {
        problems.push(format!("extra: {}", path.display()));
    }
    for path in generation.stubs.keys() {
        if !root.join(path).exists() {
            problems.push(format!("missing logic stub: {}", path.display()));
        }
    }
    for path in generation.service_libs.keys() {
        problems.push(format!(
            "service crate not wired to its logic modules: {}",
            path.display()
        ));
    }
    Ok(problems)
}

/// Files under `generated/` the generator would not write.
fn extra_files(root: &Path, generation: &Generation) -> Result<Vec<PathBuf>> {
    // Only `generated/src/` is the generator's; tests and docs beside it are hand-written.
    let generated_dir = root.join(proto::GENERATED_DIR).join("src");
    let mut extra = Vec::new();
    for path in files::list_files(root, &generated_dir)? {
        if generation.files.contains_key(&path) {
            continue;
        }
        let slash = files::relative_slash_path(Path::new(""), &path)?;
        if HAND_WRITTEN.contains(&slash.as_str()) {
            continue;
        }
        let in_schema_dir = SCHEMA_DIRS
            .iter()
            .any(|dir| slash.starts_with(&format!("generated/src/{dir}/")));
        if in_schema_dir && !generation.with_schema {
            continue;
        }
        extra.push(path);
    }
    Ok(extra)
}

/// Writes changed files, removes extra ones, creates missing stubs and wires bare service
/// crates; returns how many generated files changed.
fn write(root: &Path, generation: &Generation) -> Result<usize> {
    let mut changed = 0;
    for (path, contents) in &generation.files {
        let target = root.join(path);
        if std::fs::read(&target).is_ok_and(|existing| existing == *contents) {
            continue;
        }
        write_file(&target, contents)?;
        changed += 1;
    }
    for path in extra_files(root, generation)? {
        std::fs::remove_file(root.join(&path))
            .with_context(|| format!("failed to remove {}", path.display()))?;
        println!("removed {}", path.display());
        changed += 1;
    }

    let mut to_format = Vec::new();
    for (path, contents) in &generation.stubs {
        let target = root.join(path);
        // Never touch an existing logic file: it is hand-written from the moment it exists.
        if target.exists() {
            continue;
        }
        write_file(&target, contents.as_bytes())?;
        println!("created logic stub {}", path.display());
        to_format.push(target);
    }
    for (path, contents) in &generation.service_libs {
        let target = root.join(path);
        write_file(&target, contents.as_bytes())?;
        println!("wired {} to its logic modules", path.display());
        to_format.push(target);
    }
    format_hand_written(&to_format);
    Ok(changed)
}

fn write_file(target: &Path, contents: &[u8]) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(target, contents)
        .with_context(|| format!("failed to write {}", target.display()))
}

/// Formats new hand-written files with rustfmt, so they pass `cargo fmt --check` as written.
pub fn format_hand_written(paths: &[PathBuf]) {
    if paths.is_empty() {
        return;
    }
    let status = std::process::Command::new("rustfmt")
        .arg("--edition")
        .arg("2024")
        .args(paths)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("warning: rustfmt exited with {status} on the new logic files"),
        Err(err) => eprintln!("warning: rustfmt did not run on the new logic files: {err}"),
    }
}
