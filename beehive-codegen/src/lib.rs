//! Beehive's generator: proto descriptors and schema DSL files in, Rust source text out.
//!
//! The crate is pure: it reads nothing from disk and writes nothing. `xtask` gathers the inputs,
//! calls it, and writes or checks the returned [`OutputFile`]s.

use std::path::PathBuf;

pub mod emit;
pub mod naming;
pub mod proto;
pub mod schema;

/// One file the generator emits, with its path relative to the workspace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: PathBuf,
    pub contents: String,
}
