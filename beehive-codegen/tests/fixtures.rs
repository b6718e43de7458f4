//! Walks `tests/fixtures/proto/<case>/`: each case's protos are generated, and the IR and every
//! emitted file are snapshotted, each file also parsed as Rust. A case the generator rejects
//! snapshots its error. Adding a case needs no code.

mod common;

use std::path::Path;

#[test]
fn every_fixture_generates_as_snapshotted() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proto");
    let mut cases: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("the fixture folder exists")
        .map(|entry| entry.expect("the fixture folder is readable").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixture under {}", fixtures.display());

    for case in cases {
        let name = case
            .file_name()
            .expect("a case folder has a name")
            .to_string_lossy()
            .into_owned();
        let sources = common::with_options(common::read_protos(&case));
        match common::generate(sources) {
            Ok(output) => {
                insta::assert_debug_snapshot!(format!("{name}__ir"), output.ir);
                for file in output.files.iter().chain(&output.stubs) {
                    common::assert_parses(&file.path, &file.contents);
                    let snapshot = common::snapshot_name(&name, &file.path);
                    insta::assert_snapshot!(snapshot, &file.contents);
                }
            }
            Err(err) => {
                insta::assert_snapshot!(format!("{name}__error"), err.to_string());
            }
        }
    }
}
