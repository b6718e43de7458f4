//! Protobuf types and tonic servers/clients, generated in memory by prost-build and
//! tonic-prost-build from the same descriptors.

use std::collections::BTreeMap;

use prost::Message as _;
use prost_types::FileDescriptorSet;

use super::Error;

/// Runs prost-build with tonic's service generator over the files named in `paths`, returning
/// each package's Rust source keyed by its module path (`["acme", "chat", "v1"]`).
pub fn generate(
    descriptor_set: &[u8],
    paths: &[String],
) -> Result<BTreeMap<Vec<String>, String>, Error> {
    let set = FileDescriptorSet::decode(descriptor_set)
        .map_err(|err| Error::Internal(format!("re-decoding the descriptor set failed: {err}")))?;
    // prost-build needs every file (imports and well-known types included) to decide which
    // derives each message can have; only the wanted files' packages are kept afterwards.
    let wanted: std::collections::BTreeSet<prost_build::Module> = set
        .file
        .iter()
        .filter(|file| paths.iter().any(|path| path == file.name()))
        .map(|file| prost_build::Module::from_protobuf_package_name(file.package()))
        .collect();
    let requests = set
        .file
        .into_iter()
        .map(|file| {
            (
                prost_build::Module::from_protobuf_package_name(file.package()),
                file,
            )
        })
        .collect();

    let services = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .service_generator();
    let mut config = prost_build::Config::new();
    config.service_generator(services);
    // Formatting is done below for the kept modules only, which skips printing the
    // well-known types' modules that are dropped anyway.
    config.format(false);
    let modules = config
        .generate(requests)
        .map_err(|err| Error::Internal(format!("prost-build failed: {err}")))?;

    modules
        .into_iter()
        .filter(|(module, _)| wanted.contains(module))
        .map(|(module, text)| {
            let file = syn::parse_file(&text).map_err(|err| {
                Error::Internal(format!(
                    "prost-build output for `{module}` does not parse: {err}"
                ))
            })?;
            let parts = module.parts().map(str::to_owned).collect();
            Ok((parts, prettyplease::unparse(&file)))
        })
        .collect()
}
