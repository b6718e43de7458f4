//! Emitters: IR in, Rust source text out, built with `quote!` and printed with `prettyplease`.

pub mod header;
pub mod logic;
pub mod package;
pub mod root;
pub mod scaffold;
pub mod service;
pub mod validate;

// Schema emitters (entities, migrations, cached models); their input is `crate::schema::ir`.
pub mod entity;
pub mod migration;
pub mod model;

use proc_macro2::TokenStream;
use quote::quote;

use crate::naming::ident;
use crate::proto::ir::RustPath;

/// Prints tokens as a formatted Rust file, or reports the tokens that do not parse (a generator
/// bug, never user input).
pub fn render(tokens: TokenStream) -> Result<String, crate::proto::Error> {
    let file = syn::parse2::<syn::File>(tokens.clone()).map_err(|err| {
        crate::proto::Error::Internal(format!(
            "generated tokens do not parse as a Rust file ({err}): {tokens}"
        ))
    })?;
    Ok(space_items(&prettyplease::unparse(&file)))
}

/// Puts a blank line between consecutive items at the same indentation, which prettyplease
/// prints back to back, and after a module's `//!` documentation. Only whitespace changes.
fn space_items(text: &str) -> String {
    const ITEM_STARTS: &[&str] = &[
        "pub ",
        "impl",
        "fn ",
        "async fn",
        "struct ",
        "enum ",
        "mod ",
        "type ",
        "const ",
        "static ",
        "trait ",
        "use ",
        "#[",
        "///",
        "macro_rules!",
        "beehive_generated::",
    ];
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut previous: Option<&str> = None;
    for line in text.lines() {
        if let Some(prev) = previous {
            let indent = line.len() - line.trim_start().len();
            let prev_indent = prev.len() - prev.trim_start().len();
            let body = line.trim_start();
            let prev_body = prev.trim_start();
            let starts_item = ITEM_STARTS.iter().any(|start| body.starts_with(start));
            let ends_item = !prev_body.starts_with("//")
                && !prev_body.starts_with("let ")
                && (prev_body == "}" || prev_body.ends_with(';') || prev_body.ends_with("{}"));
            let both_uses = body.starts_with("use ") && prev_body.starts_with("use ");
            let after_inner_doc = prev_body.starts_with("//!") && !body.starts_with("//!");
            let after_header = prev_body.starts_with("// ") && !body.starts_with("//");
            let separate = (indent == prev_indent && starts_item && ends_item && !both_uses)
                || after_inner_doc
                || after_header;
            if separate && !prev.is_empty() && !line.is_empty() {
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
        previous = Some(line);
    }
    out
}

/// Returns the Rust type of a message or enum path, as seen from anywhere in the generated
/// crate.
pub fn rust_type(path: &RustPath) -> TokenStream {
    match path {
        RustPath::Unit => quote!(()),
        RustPath::ProstTypes(name) => {
            let name = ident(name);
            quote!(::prost_types::#name)
        }
        RustPath::Pb(segments) => {
            let segments = segments.iter().map(|segment| ident(segment));
            quote!(crate::pb #(:: #segments)*)
        }
    }
}

/// Returns the Rust type of a path as seen from outside the generated crate (service crates).
pub fn external_type(path: &RustPath) -> TokenStream {
    match path {
        RustPath::Pb(segments) => {
            let segments = segments.iter().map(|segment| ident(segment));
            quote!(beehive_generated::pb #(:: #segments)*)
        }
        other => rust_type(other),
    }
}

/// `#[doc = "..."]` attributes for each line of `text`.
pub fn doc_lines(text: &str) -> TokenStream {
    let lines = text.lines().map(doc_line);
    quote!(#(#[doc = #lines])*)
}

/// `#![doc = "..."]` attributes for each line of `text`, for a module's own documentation.
pub fn inner_doc_lines(text: &str) -> TokenStream {
    let lines = text.lines().map(doc_line);
    quote!(#(#![doc = #lines])*)
}

/// One doc line as rustdoc expects it: a space after `///`, none on an empty line.
fn doc_line(line: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!(" {line}")
    }
}
