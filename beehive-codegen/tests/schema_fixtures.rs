//! Snapshots of everything the schema generator emits for each fixture in
//! `tests/fixtures/schema/*.schema`, and of the error for each fixture in
//! `tests/fixtures/schema/errors/`. Adding a fixture file needs no code: run the tests and
//! review the new snapshots with `cargo insta review`.

use std::path::{Path, PathBuf};

use beehive_codegen::schema;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema")
}

/// Returns the `.schema` files directly in `dir`, sorted by name.
fn schema_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .max_depth(1)
        .into_iter()
        .map(|entry| entry.unwrap().into_path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "schema"))
        .collect();
    files.sort();
    files
}

/// Reads a fixture under the path a workspace file would have: `schema/<name>.schema`.
fn input(path: &Path) -> (PathBuf, String) {
    let name = path.file_name().unwrap();
    (
        PathBuf::from("schema").join(name),
        std::fs::read_to_string(path).unwrap(),
    )
}

fn snapshot_name(fixture: &Path, output: &Path) -> String {
    let stem = fixture.file_stem().unwrap().to_string_lossy();
    let output = output
        .strip_prefix("generated/src")
        .unwrap_or(output)
        .to_string_lossy()
        .replace(['/', '\\'], "__");
    format!("{stem}__{output}")
}

#[test]
fn fixtures_generate_snapshots() {
    let fixtures = schema_files(&fixture_dir());
    assert!(
        fixtures.len() >= 3,
        "fixtures missing from {}",
        fixture_dir().display()
    );
    for fixture in fixtures {
        let files = schema::generate(&[input(&fixture)])
            .unwrap_or_else(|err| panic!("{} failed:\n{err}", fixture.display()));
        for file in files {
            insta::assert_snapshot!(snapshot_name(&fixture, &file.path), file.contents);
        }
    }
}

#[test]
fn error_fixtures_name_line_column_and_hint() {
    let fixtures = schema_files(&fixture_dir().join("errors"));
    assert!(fixtures.len() >= 10, "error fixtures missing");
    for fixture in fixtures {
        let (path, source) = input(&fixture);
        let err = match schema::generate(&[(path.clone(), source)]) {
            Ok(_) => panic!("{} generated code but must fail", fixture.display()),
            Err(err) => err,
        };
        let location = format!("{}:{}:{}: ", path.display(), err.line, err.col);
        assert!(err.to_string().starts_with(&location), "{err}");
        assert!(!err.hint.is_empty(), "{} has no hint", fixture.display());
        let name = format!("error__{}", fixture.file_stem().unwrap().to_string_lossy());
        insta::assert_snapshot!(name, err.to_string());
    }
}

#[test]
fn generation_is_byte_stable() {
    let inputs: Vec<(PathBuf, String)> = schema_files(&fixture_dir())
        .iter()
        .map(|f| input(f))
        .collect();
    let mut reversed = inputs.clone();
    reversed.reverse();
    assert_eq!(
        schema::generate(&inputs).unwrap(),
        schema::generate(&reversed).unwrap()
    );
}

#[test]
fn same_table_in_two_files_is_rejected() {
    let table = "table users {\n    id bigint pk auto\n}\n".to_owned();
    let err = schema::generate(&[
        (PathBuf::from("schema/a.schema"), table.clone()),
        (PathBuf::from("schema/b.schema"), table),
    ])
    .unwrap_err();
    assert_eq!(err.file, "schema/b.schema");
    assert_eq!((err.line, err.col), (1, 7));
    assert!(
        err.message
            .contains("already defined at schema/a.schema:1:7"),
        "{err}"
    );
}

/// The service schemas in `schema/`, one snapshot per emitted file.
#[test]
fn service_schemas_generate_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let inputs: Vec<(PathBuf, String)> = schema_files(&dir).iter().map(|f| input(f)).collect();
    assert_eq!(inputs.len(), 5, "expected the five service schemas");
    for file in schema::generate(&inputs).unwrap() {
        let name = file
            .path
            .strip_prefix("generated/src")
            .unwrap()
            .to_string_lossy()
            .replace(['/', '\\'], "__");
        insta::assert_snapshot!(format!("services__{name}"), file.contents);
    }
}

/// Folder of the generated crate where the fixtures' output is checked in, so that the crate's
/// tests compile it and run its migrations.
fn compiled_fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated/tests/fixtures")
}

/// Set to `1` to rewrite the checked-in fixture output instead of comparing it.
const BLESS_VAR: &str = "BEEHIVE_BLESS";

/// The fixture output under `generated/tests/fixtures/` is what the generator emits now, and its
/// `mod.rs` lists every fixture; run with `BEEHIVE_BLESS=1` to rewrite it.
#[test]
fn compiled_fixture_output_is_current() {
    let mut expected: Vec<(PathBuf, String)> = Vec::new();
    let mut modules = Vec::new();
    for fixture in schema_files(&fixture_dir()) {
        let stem = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        for file in schema::generate(&[input(&fixture)]).unwrap() {
            let relative = file.path.strip_prefix("generated/src").unwrap();
            expected.push((Path::new(&stem).join(relative), file.contents));
        }
        let module = proc_macro2::Ident::new(&stem, proc_macro2::Span::call_site());
        modules.push(quote::quote! {
            pub mod #module {
                pub mod entity;
                pub mod migration;
                pub mod model;
            }
        });
    }
    let index = quote::quote! {
        //! Output of the schema fixtures in `beehive-codegen/tests/fixtures/schema/`, one module
        //! per fixture, written by `BEEHIVE_BLESS=1 cargo test -p beehive-codegen --test schema_fixtures`.
        #![allow(dead_code, unused_imports)]
        #(#modules)*
    };
    let index = prettyplease::unparse(&syn::parse2(index).unwrap());
    expected.push((PathBuf::from("mod.rs"), index));

    let dir = compiled_fixture_dir();
    let bless = std::env::var(BLESS_VAR).is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, contents) in &expected {
        let full = dir.join(path);
        if std::fs::read_to_string(&full).ok().as_deref() == Some(contents.as_str()) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, contents).unwrap();
        } else {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale fixture output in {}: {stale:?}; rerun with {BLESS_VAR}=1",
        dir.display()
    );
}
