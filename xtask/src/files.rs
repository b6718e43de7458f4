//! Reading the generator's inputs from the workspace.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use beehive_codegen::proto::ProtoSource;

/// Reads every `.proto` under `root/proto`, with `/`-separated paths relative to it, sorted.
pub fn read_protos(root: &Path) -> Result<Vec<ProtoSource>> {
    read_tree(&root.join("proto"), "proto").map(|files| {
        files
            .into_iter()
            .map(|(path, text)| ProtoSource { path, text })
            .collect()
    })
}

/// Reads every `.<extension>` file under `dir`, as (relative path, text) pairs sorted by path.
pub fn read_tree(dir: &Path, extension: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("failed to walk {}", dir.display()))?;
        let path = entry.path();
        if !entry.file_type().is_file()
            || path.extension().and_then(|e| e.to_str()) != Some(extension)
        {
            continue;
        }
        let relative = relative_slash_path(dir, path)?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        out.push((relative, text));
    }
    Ok(out)
}

/// `path` relative to `base`, with `/` separators on every platform.
pub fn relative_slash_path(base: &Path, path: &Path) -> Result<String> {
    let relative = path
        .strip_prefix(base)
        .with_context(|| format!("{} is not under {}", path.display(), base.display()))?;
    let parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(parts.join("/"))
}

/// Names of the service crates: folders `services/<name>` holding a `Cargo.toml`.
pub fn service_crates(root: &Path) -> Result<Vec<String>> {
    let services = root.join("services");
    let mut names = Vec::new();
    if !services.exists() {
        return Ok(names);
    }
    for entry in std::fs::read_dir(&services)
        .with_context(|| format!("failed to list {}", services.display()))?
    {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Lists every file under `dir`, as workspace-relative paths.
pub fn list_files(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("failed to walk {}", dir.display()))?;
        if entry.file_type().is_file() {
            out.push(entry.path().strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(out)
}
