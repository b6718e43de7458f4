//! The schema DSL: `schema/<service>.schema` files in, SeaORM entities, migrations and cached
//! models out.
//!
//! Staged as parse ([`parse`]) → validate ([`validate`]) → IR ([`ir`]) → emit (`crate::emit`).
//! The grammar is described in `schema/README.md`.

pub mod ir;
pub mod parse;
pub(crate) mod tokens;
pub mod validate;

use std::fmt;
use std::path::PathBuf;

use crate::OutputFile;

pub use ir::Schema;

/// The hint given wherever a type is missing or unknown.
pub(crate) const TYPE_HINT: &str =
    "types are smallint, int, bigint, bool, string(N), text, bytes, json and timestamp";

/// An error in a schema file, located at the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// The offending source text.
    pub found: String,
    pub message: String,
    pub hint: String,
}

impl SchemaError {
    pub(crate) fn at(
        file: &str,
        pos: parse::Pos,
        found: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line: pos.line,
            col: pos.col,
            found: found.to_owned(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} (at `{}`)\n  hint: {}",
            self.file, self.line, self.col, self.message, self.found, self.hint
        )
    }
}

impl std::error::Error for SchemaError {}

/// Parses and validates schema files given as (path relative to the workspace, contents).
pub fn load(inputs: &[(PathBuf, String)]) -> Result<Schema, SchemaError> {
    let mut sorted: Vec<&(PathBuf, String)> = inputs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));

    let mut parsed = Vec::with_capacity(sorted.len());
    for (path, source) in sorted {
        let file = path.to_string_lossy().replace('\\', "/");
        let tables = parse::parse(&file, source)?;
        parsed.push((path.clone(), file, tables));
    }
    validate::validate(parsed)
}

/// Generates entities, migrations and cached models for the schema files given as
/// (path relative to the workspace, contents). Pure: reads and writes nothing.
pub fn generate(inputs: &[(PathBuf, String)]) -> Result<Vec<OutputFile>, SchemaError> {
    let schema = load(inputs)?;
    let emitted = [
        crate::emit::entity::emit(&schema),
        crate::emit::migration::emit(&schema),
        crate::emit::model::emit(&schema),
    ];
    let mut files = Vec::new();
    for result in emitted {
        files.extend(result.map_err(|error| SchemaError {
            file: "schema".to_owned(),
            line: 1,
            col: 1,
            found: error.to_string(),
            message: "the generated code does not parse, which is a generator bug".to_owned(),
            hint: "report it with the schema files that trigger it".to_owned(),
        })?);
    }
    Ok(files)
}
