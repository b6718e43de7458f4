//! `cargo xtask gen` against small temporary workspaces: hand-written logic is never touched,
//! `--check` lists every difference, and the breaking-change gate names each break.

use std::path::{Path, PathBuf};
use std::process::Output;

const PROTO: &str = r#"syntax = "proto3";

package demo;

import "beehive/options.proto";

service DemoService {
  rpc First(FirstRequest) returns (Reply);
  rpc Second(SecondRequest) returns (Reply);
}

message FirstRequest {
  int64 id = 1 [(beehive.rules) = { required: true }];
  string name = 2;
  int32 count = 3;
}

message SecondRequest {
  string text = 1;
}

message Reply {
  bool ok = 1;
}
"#;

const HAND_WRITTEN_LOGIC: &str = "//! First: hand-written.\n\nfn not_a_stub() {}\n";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// A workspace with the demo proto, Beehive's options and a `services/demo` crate.
fn demo_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = dir.path();
    write(root, "proto/demo/v1/demo.proto", PROTO);
    let options = std::fs::read_to_string(workspace_root().join("proto/beehive/options.proto"))
        .expect("proto/beehive/options.proto exists");
    write(root, "proto/beehive/options.proto", &options);
    write(
        root,
        "services/demo/Cargo.toml",
        "[package]\nname = \"beehive-demo\"\n",
    );
    write(
        root,
        "services/demo/src/lib.rs",
        "//! Hand-written logic of the demo service.\n",
    );
    dir
}

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("create folders");
    std::fs::write(path, contents).expect("write the file");
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

fn xtask(root: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("xtask runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn gen_never_touches_existing_logic() {
    let dir = demo_workspace();
    let root = dir.path();
    write(root, "services/demo/src/logic/first.rs", HAND_WRITTEN_LOGIC);

    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));

    assert_eq!(
        read(root, "services/demo/src/logic/first.rs"),
        HAND_WRITTEN_LOGIC
    );
    let second = read(root, "services/demo/src/logic/second.rs");
    assert!(
        second.contains("Err(ServiceError::Unimplemented(\"Second\".to_owned()))"),
        "{second}"
    );
    assert!(
        second.contains("impl Handle<rpc::Second> for crate::DemoService"),
        "{second}"
    );

    // A stub becomes hand-written once it exists: a second run keeps the edit.
    let edited = format!("{second}\n// edited\n");
    write(root, "services/demo/src/logic/second.rs", &edited);
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(read(root, "services/demo/src/logic/second.rs"), edited);
    assert_eq!(
        read(root, "services/demo/src/logic/first.rs"),
        HAND_WRITTEN_LOGIC
    );
}

#[test]
fn gen_wires_a_bare_lib_rs_once() {
    let dir = demo_workspace();
    let root = dir.path();
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));

    let lib = read(root, "services/demo/src/lib.rs");
    assert!(
        lib.starts_with("//! Hand-written logic of the demo service.\n"),
        "{lib}"
    );
    assert!(
        lib.contains("beehive_generated::demo_logic_modules!();"),
        "{lib}"
    );
    assert!(lib.contains("pub struct DemoService;"), "{lib}");

    let hand_written = format!("{lib}\npub fn helper() {{}}\n");
    write(root, "services/demo/src/lib.rs", &hand_written);
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(read(root, "services/demo/src/lib.rs"), hand_written);
}

#[test]
fn check_lists_every_difference() {
    let dir = demo_workspace();
    let root = dir.path();
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = xtask(root, &["gen", "--check"]);
    assert!(output.status.success(), "{}", stderr(&output));

    write(root, "generated/src/demo.rs", "// edited by hand\n");
    std::fs::remove_file(root.join("generated/src/pb/mod.rs")).expect("remove pb/mod.rs");
    write(root, "generated/src/stray.rs", "// not generated\n");
    std::fs::remove_file(root.join("services/demo/src/logic/first.rs")).expect("remove a stub");

    let output = xtask(root, &["gen", "--check"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("stale: generated/src/demo.rs"), "{text}");
    assert!(text.contains("missing: generated/src/pb/mod.rs"), "{text}");
    assert!(text.contains("extra: generated/src/stray.rs"), "{text}");
    assert!(
        text.contains("missing logic stub: services/demo/src/logic/first.rs"),
        "{text}"
    );
    assert!(text.contains("run `cargo xtask gen`"), "{text}");
    // Check mode writes nothing.
    assert_eq!(read(root, "generated/src/demo.rs"), "// edited by hand\n");
    assert!(!root.join("generated/src/pb/mod.rs").exists());
}

#[test]
fn breaking_changes_are_refused_naming_each() {
    let dir = demo_workspace();
    let root = dir.path();
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let descriptor = std::fs::read(root.join("generated/descriptor.bin")).expect("descriptor");

    let broken = PROTO
        .replace("  rpc Second(SecondRequest) returns (Reply);\n", "")
        .replace("  string name = 2;\n", "")
        .replace("int32 count = 3;", "int32 count = 4;")
        .replace("string text = 1;", "int64 text = 1;");
    write(root, "proto/demo/v1/demo.proto", &broken);

    let output = xtask(root, &["gen"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("removed RPC `demo.DemoService.Second`"),
        "{text}"
    );
    assert!(
        text.contains("removed field `demo.FirstRequest.name` (number 2)"),
        "{text}"
    );
    assert!(
        text.contains("renumbered field `demo.FirstRequest.count` from 3 to 4"),
        "{text}"
    );
    assert!(
        text.contains("retyped field `demo.SecondRequest.text` from string to int64"),
        "{text}"
    );
    assert!(text.contains("--allow-breaking"), "{text}");
    assert_eq!(
        std::fs::read(root.join("generated/descriptor.bin")).expect("descriptor"),
        descriptor,
        "a refused run writes nothing"
    );

    let output = xtask(root, &["gen", "--allow-breaking"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_ne!(
        std::fs::read(root.join("generated/descriptor.bin")).expect("descriptor"),
        descriptor
    );
}

#[test]
fn additive_changes_pass_the_gate() {
    let dir = demo_workspace();
    let root = dir.path();
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));

    let extended = PROTO
        .replace("  int32 count = 3;\n", "  int32 count = 3;\n  string note = 4;\n")
        .replace(
            "  rpc Second(SecondRequest) returns (Reply);\n",
            "  rpc Second(SecondRequest) returns (Reply);\n  rpc Third(SecondRequest) returns (Reply);\n",
        );
    write(root, "proto/demo/v1/demo.proto", &extended);
    let output = xtask(root, &["gen"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(root.join("services/demo/src/logic/third.rs").exists());
}

#[test]
fn proto_errors_name_the_file_and_line() {
    let dir = demo_workspace();
    let root = dir.path();
    write(
        root,
        "proto/demo/v1/demo.proto",
        &PROTO.replace("int32 count = 3;", "int32 count = ;"),
    );
    let output = xtask(root, &["gen"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("demo/v1/demo.proto:15:"), "{text}");
    assert!(
        !root.join("generated").exists(),
        "a failed run writes nothing"
    );
}
