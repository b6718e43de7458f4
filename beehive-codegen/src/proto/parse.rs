//! Parsing: proto sources held in memory → a descriptor pool (protox, no protoc).

use std::collections::BTreeMap;

use prost_reflect::DescriptorPool;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::Error;

/// One proto source: its path relative to the proto root (`user/v1/user.proto`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoSource {
    pub path: String,
    pub text: String,
}

/// The parsed protos: the pool for reading options, and the encoded descriptor set.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub pool: DescriptorPool,
    /// The encoded `FileDescriptorSet` of every source and its imports, with source info and
    /// custom options intact.
    pub descriptor_set: Vec<u8>,
    /// The sources' paths, in order, which are the files to generate code for.
    pub paths: Vec<String>,
}

struct MemoryResolver {
    files: BTreeMap<String, String>,
}

impl FileResolver for MemoryResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(text) => File::from_source(name, text),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Parses and links `sources`; imports resolve among them and to the well-known types.
pub fn parse(sources: &[ProtoSource]) -> Result<Parsed, Error> {
    let mut sorted: Vec<&ProtoSource> = sources.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let files = sorted
        .iter()
        .map(|source| (source.path.clone(), source.text.clone()))
        .collect();

    let mut resolver = ChainFileResolver::new();
    resolver.add(MemoryResolver { files });
    resolver.add(GoogleFileResolver::new());

    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    for source in &sorted {
        compiler
            .open_file(&source.path)
            .map_err(|err| Error::Parse(render_protox_error(&err)))?;
    }

    Ok(Parsed {
        pool: compiler.descriptor_pool(),
        descriptor_set: compiler.encode_file_descriptor_set(),
        paths: sorted.iter().map(|source| source.path.clone()).collect(),
    })
}

/// Renders a protox error with its `file:line:col` when protox knows the location.
fn render_protox_error(err: &protox::Error) -> String {
    use miette::Diagnostic;

    let mut text = err.to_string();
    if let (Some(file), Some(source), Some(mut labels)) =
        (err.file(), err.source_code(), err.labels())
        && let Some(label) = labels.next()
        && let Ok(span) = source.read_span(label.inner(), 0, 0)
    {
        text = format!("{file}:{}:{}: {text}", span.line() + 1, span.column() + 1);
    }
    text
}
