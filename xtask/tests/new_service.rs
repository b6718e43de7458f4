//! `cargo xtask new-service` end to end: scaffolds a service into a copy of the workspace,
//! regenerates, then builds it and runs its serve test there. The same copy also compiles the
//! generator's fixture outputs as crates, which proves more than parsing them.
//!
//! Builds share this workspace's target folder, so only the copied workspace crates compile.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use beehive_codegen::proto::{ProtoInput, ProtoSource};

const SERVICE: &str = "inventory";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// The target folder this test binary was built into.
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("the xtask binary sits in <target>/<profile>/")
}

/// Copies the workspace without `target/`, `.git/` and `data/`.
fn copy_workspace(from: &Path, to: &Path) {
    let skip = ["target", ".git", "data"];
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() != 1 || !skip.contains(&entry.file_name().to_string_lossy().as_ref())
        })
    {
        let entry = entry.expect("the workspace is readable");
        let relative = entry.path().strip_prefix(from).expect("walked below from");
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("create a folder");
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

fn run(root: &Path, program: &Path, args: &[&str]) {
    let output = Command::new(program)
        .current_dir(root)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap_or_else(|err| panic!("{} does not run: {err}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn add_member(root: &Path, member: &str) {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read Cargo.toml");
    let start = text.find("members = [").expect("a members list");
    let end = start + text[start..].find(']').expect("a closed members list");
    let updated = format!("{}    \"{member}\",\n{}", &text[..end], &text[end..]);
    std::fs::write(&manifest, updated).expect("write Cargo.toml");
}

fn read_protos(dir: &Path) -> Vec<ProtoSource> {
    let mut sources = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.expect("the fixture folder is readable");
        if entry.path().extension().and_then(|e| e.to_str()) != Some("proto") {
            continue;
        }
        let relative = entry.path().strip_prefix(dir).expect("walked below dir");
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

/// Writes each fixture that generates as a crate `fixture-crates/<case>`; returns the package
/// names.
fn write_fixture_crates(root: &Path) -> Vec<String> {
    let fixtures = workspace_root().join("beehive-codegen/tests/fixtures/proto");
    let options = std::fs::read_to_string(workspace_root().join("proto/beehive/options.proto"))
        .expect("proto/beehive/options.proto exists");
    let mut packages = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .expect("the fixture folder exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    for case in cases {
        let name = case
            .file_name()
            .expect("named")
            .to_string_lossy()
            .into_owned();
        let mut sources = read_protos(&case);
        sources.push(ProtoSource {
            path: "beehive/options.proto".to_owned(),
            text: options.clone(),
        });
        let Ok(output) = beehive_codegen::proto::generate(&ProtoInput {
            sources,
            service_crates: BTreeSet::new(),
            with_schema: false,
        }) else {
            continue;
        };
        let dir = root.join("fixture-crates").join(&name);
        for file in &output.files {
            let relative = file
                .path
                .strip_prefix("generated")
                .expect("under generated/");
            let target = dir.join(relative);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("create");
            std::fs::write(target, &file.contents).expect("write");
        }
        std::fs::write(dir.join("descriptor.bin"), &output.descriptor_set).expect("write");
        let package = format!("fixture-{}", name.replace('_', "-"));
        let manifest = format!(
            "[package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[dependencies]\n\
             beehive-runtime = {{ workspace = true }}\ntonic = {{ workspace = true }}\n\
             tonic-prost = {{ workspace = true }}\nprost = {{ workspace = true }}\n\
             prost-types = {{ workspace = true }}\nfutures = {{ workspace = true }}\n"
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).expect("write");
        add_member(root, &format!("fixture-crates/{name}"));
        packages.push(package);
    }
    packages
}

#[test]
fn scaffolded_service_builds_and_serves() {
    let copy = tempfile::tempdir().expect("a temporary folder");
    let root = copy.path();
    copy_workspace(&workspace_root(), root);
    let xtask = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
    let root_arg = root.to_str().expect("a UTF-8 temporary path");

    run(root, &xtask, &["--root", root_arg, "new-service", SERVICE]);
    assert!(root.join("proto/inventory/v1/inventory.proto").is_file());
    assert!(root.join("services/inventory/Cargo.toml").is_file());
    if root.join("schema").is_dir() {
        assert!(root.join("schema/inventory.schema").is_file());
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    assert!(manifest.contains("\"services/inventory\""), "{manifest}");

    run(root, &xtask, &["--root", root_arg, "gen"]);
    assert!(root.join("services/inventory/src/logic/echo.rs").is_file());
    run(root, &xtask, &["--root", root_arg, "gen", "--check"]);

    let fixtures = write_fixture_crates(root);
    assert!(fixtures.len() >= 4, "only {fixtures:?} generate");
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    // One build for all: the fixture crates have no tests, so `cargo test` only compiles them.
    let mut test = vec!["test", "--quiet", "-p", "beehive-inventory"];
    for package in &fixtures {
        test.push("-p");
        test.push(package);
    }
    run(root, &cargo, &test);
}
