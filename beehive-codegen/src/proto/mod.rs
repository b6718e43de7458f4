//! The proto half of the generator: parse (protox) → lower to IR → emit glue, plus prost-build
//! and tonic-prost-build's types, servers and clients, all in memory.

pub mod breaking;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod prost;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::OutputFile;
use crate::emit::{self, header::with_header};
pub use parse::ProtoSource;

/// Folder of the generated crate, relative to the workspace root.
pub const GENERATED_DIR: &str = "generated";
/// Folder of the protos, relative to the workspace root.
pub const PROTO_DIR: &str = "proto";

/// A failure of the proto half of the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A proto does not parse or link; the text has `file:line:col` when protox knows it.
    #[error("proto parse error: {0}")]
    Parse(String),
    /// A construct the generator does not support, named in the text.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Options or names the generator cannot honour, named in the text.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A generator bug.
    #[error("internal generator error: {0}")]
    Internal(String),
}

/// What the proto half needs.
#[derive(Debug, Clone, Default)]
pub struct ProtoInput {
    /// Every `.proto` under `proto/`, with paths relative to it.
    pub sources: Vec<ProtoSource>,
    /// Service groups (`proto/<name>/`) that have a crate in `services/<name>`, which get
    /// logic stubs.
    pub service_crates: BTreeSet<String>,
    /// Whether the schema half produced modules, so `lib.rs` declares them.
    pub with_schema: bool,
}

/// What the proto half produces.
#[derive(Debug, Clone)]
pub struct ProtoOutput {
    /// Files under `generated/`, rewritten on every run.
    pub files: Vec<OutputFile>,
    /// `generated/descriptor.bin`: the encoded `FileDescriptorSet`.
    pub descriptor_set: Vec<u8>,
    /// Logic stubs under `services/`, written only where no file exists.
    pub stubs: Vec<OutputFile>,
    pub ir: ir::ProtoIr,
}

/// Path of the checked-in descriptor set, relative to the workspace root.
pub fn descriptor_path() -> PathBuf {
    PathBuf::from(GENERATED_DIR).join("descriptor.bin")
}

/// Runs the proto half over `input`.
pub fn generate(input: &ProtoInput) -> Result<ProtoOutput, Error> {
    let parsed = parse::parse(&input.sources)?;
    let ir = lower::lower(&parsed.pool, &parsed.paths)?;
    let prost_modules = prost::generate(&parsed.descriptor_set, &parsed.paths)?;
    let descriptor_set = strip_source_info(&parsed.descriptor_set)?;

    let src = PathBuf::from(GENERATED_DIR).join("src");
    let all_sources: Vec<String> = parsed
        .paths
        .iter()
        .map(|path| format!("{PROTO_DIR}/{path}"))
        .collect();
    let mut files = Vec::new();

    // prost-build's files, one per package, and the `pb` module tree over them.
    let package_sources: BTreeMap<Vec<String>, Vec<String>> = ir
        .packages
        .iter()
        .map(|package| {
            let sources = package
                .files
                .iter()
                .map(|file| format!("{PROTO_DIR}/{file}"))
                .collect();
            (package.module.clone(), sources)
        })
        .collect();
    for (module, text) in &prost_modules {
        let sources = package_sources.get(module).cloned().unwrap_or_default();
        files.push(OutputFile {
            path: src.join("pb").join(emit::root::pb_file_name(module)),
            contents: with_header(&sources, text),
        });
    }
    files.push(OutputFile {
        path: src.join("pb").join("mod.rs"),
        contents: with_header(
            &all_sources,
            &emit::render(emit::root::pb_mod_rs(&prost_modules))?,
        ),
    });

    // One module file per package (and per enclosing package segment).
    let needs: BTreeSet<String> = ir
        .packages
        .iter()
        .flat_map(|package| &package.messages)
        .filter(|message| message.needs_validation)
        .map(|message| message.full_name.clone())
        .collect();
    let needs_validation = |name: &str| needs.contains(name);
    let mut nodes: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for package in &ir.packages {
        for depth in 1..=package.module.len() {
            let children = nodes.entry(package.module[..depth].to_vec()).or_default();
            if let Some(child) = package.module.get(depth) {
                children.insert(child.clone());
            }
        }
    }
    let packages: BTreeMap<&Vec<String>, &ir::Package> = ir
        .packages
        .iter()
        .map(|package| (&package.module, package))
        .collect();
    let mut top_modules = BTreeSet::new();
    for (module, children) in &nodes {
        if module.len() == 1 {
            top_modules.insert(module[0].clone());
        }
        let declarations = emit::root::child_declarations(children);
        let (body, sources) = match packages.get(module) {
            Some(package) => (
                emit::package::package_module(package, &needs_validation),
                package_sources.get(module).cloned().unwrap_or_default(),
            ),
            None => {
                let doc =
                    emit::inner_doc_lines(&format!("Proto packages under `{}`.", module.join(".")));
                (doc, Vec::new())
            }
        };
        let tokens = quote::quote! {
            #body
            #declarations
        };
        files.push(OutputFile {
            path: src.join(emit::root::module_file(module)),
            contents: with_header(&sources, &emit::render(tokens)?),
        });
    }

    let service_sources: Vec<String> = ir
        .packages
        .iter()
        .flat_map(|package| &package.services)
        .map(|service| format!("{PROTO_DIR}/{}", service.file))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    files.push(OutputFile {
        path: src.join("logic_modules.rs"),
        contents: with_header(
            &service_sources,
            &emit::render(emit::logic::logic_modules_rs(&ir))?,
        ),
    });
    files.push(OutputFile {
        path: src.join("lib.rs"),
        contents: with_header(
            &all_sources,
            &emit::render(emit::root::lib_rs(&top_modules, input.with_schema))?,
        ),
    });

    let stubs = stubs(&ir, &input.service_crates)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ProtoOutput {
        files,
        descriptor_set,
        stubs,
        ir,
    })
}

/// Logic stubs of every RPC of the groups that have a service crate.
fn stubs(ir: &ir::ProtoIr, service_crates: &BTreeSet<String>) -> Result<Vec<OutputFile>, Error> {
    let mut stubs = Vec::new();
    for group in &ir.service_groups {
        if !service_crates.contains(&group.name) {
            continue;
        }
        for (package_name, service_name) in &group.services {
            let Some(package) = ir.packages.iter().find(|p| &p.name == package_name) else {
                continue;
            };
            let Some(service) = package.services.iter().find(|s| &s.name == service_name) else {
                continue;
            };
            for rpc in &service.rpcs {
                let path = PathBuf::from("services")
                    .join(&group.name)
                    .join("src")
                    .join("logic")
                    .join(format!("{}.rs", rpc.file_stem));
                stubs.push(OutputFile {
                    path,
                    contents: emit::render(emit::logic::stub(package, service, rpc))?,
                });
            }
        }
    }
    Ok(stubs)
}

/// The first `lib.rs` of service crate `group`, keeping its existing doc line.
pub fn service_lib_rs(ir: &ir::ProtoIr, group: &str, doc_line: &str) -> Result<String, Error> {
    let Some(group) = ir.service_groups.iter().find(|g| g.name == group) else {
        return Err(Error::Invalid(format!(
            "no proto under `{PROTO_DIR}/{group}/` declares a service"
        )));
    };
    emit::render(emit::logic::service_lib_rs(doc_line, group))
}

/// Drops source info (comments and spans) from the descriptor set served for reflection, so it
/// stays small and does not change when only a comment does.
fn strip_source_info(descriptor_set: &[u8]) -> Result<Vec<u8>, Error> {
    use ::prost::Message as _;

    let mut set = prost_types::FileDescriptorSet::decode(descriptor_set)
        .map_err(|err| Error::Internal(format!("re-decoding the descriptor set failed: {err}")))?;
    for file in &mut set.file {
        file.source_code_info = None;
    }
    Ok(set.encode_to_vec())
}
