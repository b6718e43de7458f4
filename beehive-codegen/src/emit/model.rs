//! Reads the schema IR and emits a cache-aside model per cached table, plus `model/mod.rs`.

use quote::quote;

use crate::OutputFile;
use crate::schema::ir::{Schema, output_path};
use crate::schema::tokens::render;

/// Emits `generated/src/model/<table>.rs` for every table with cached keys and the `mod.rs`.
pub fn emit(schema: &Schema) -> Result<Vec<OutputFile>, syn::Error> {
    let sources: Vec<String> = schema
        .files
        .iter()
        .map(|f| f.path.to_string_lossy().replace('\\', "/"))
        .collect();
    let mod_rs = quote! {
        //! Cache-aside models, one module per cached table.
    };
    Ok(vec![render(
        output_path("model", "mod.rs"),
        &sources,
        mod_rs,
    )?])
}
