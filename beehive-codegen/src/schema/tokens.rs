//! Helpers the schema emitters share: identifiers for IR names and printing a file.

use std::path::PathBuf;

use proc_macro2::{Ident, Span, TokenStream};

use super::ir::Name;
use crate::OutputFile;
use crate::emit::header::with_header;

/// Prints `tokens` as a file with the generated-code header naming `sources`.
///
/// Fails when the tokens are not a valid file, which is a generator bug.
pub(crate) fn render(
    path: PathBuf,
    sources: &[String],
    tokens: TokenStream,
) -> Result<OutputFile, syn::Error> {
    let file: syn::File = syn::parse2(tokens)?;
    Ok(OutputFile {
        path,
        contents: with_header(sources, &prettyplease::unparse(&file)),
    })
}

/// Returns the snake_case identifier of a name, raw (`r#type`) when it is a keyword.
pub(crate) fn snake_ident(name: &Name) -> Ident {
    if name.raw {
        Ident::new_raw(&name.snake, Span::call_site())
    } else {
        Ident::new(&name.snake, Span::call_site())
    }
}
