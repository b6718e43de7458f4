//! Reads the IR's package list and emits the crate's skeleton: `lib.rs`, the `pb` module tree
//! over prost-build's files, and the module files of nested packages.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::TokenStream;
use quote::quote;

use crate::naming::ident;

/// `generated/src/lib.rs`: the top-level modules, the descriptor set and the message limits.
pub fn lib_rs(top_modules: &BTreeSet<String>, with_schema: bool) -> TokenStream {
    let modules = top_modules.iter().map(|module| {
        let module = ident(module);
        quote! {
            #[rustfmt::skip]
            pub mod #module;
        }
    });
    let schema_modules = if with_schema {
        quote! {
            #[rustfmt::skip]
            #[allow(clippy::all)]
            pub mod entity;
            #[rustfmt::skip]
            #[allow(clippy::all)]
            pub mod migration;
            #[rustfmt::skip]
            #[allow(clippy::all)]
            pub mod model;
        }
    } else {
        quote!()
    };
    quote! {
        //! Output of `cargo xtask gen`: protobuf types and tonic servers/clients (`pb`), one module
        //! of glue per proto package (RPC markers, adapters, `server`, typed clients, input
        //! checks), the logic-modules macros, and the schema's entities, migrations and models.

        #[rustfmt::skip]
        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod pb;

        #[rustfmt::skip]
        mod logic_modules;

        #(#modules)*

        #schema_modules

        /// The encoded `FileDescriptorSet` of every proto, for gRPC reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("../descriptor.bin");

        /// Largest gRPC messages a server or client accepts (decoding) and sends (encoding).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct MessageLimits {
            pub max_decoding_message_size: usize,
            pub max_encoding_message_size: usize,
        }

        impl MessageLimits {
            /// tonic's default limit in both directions: 4 MiB.
            pub const DEFAULT_BYTES: usize = 4 * 1024 * 1024;

            /// The same limit in both directions.
            pub const fn both(bytes: usize) -> Self {
                Self {
                    max_decoding_message_size: bytes,
                    max_encoding_message_size: bytes,
                }
            }
        }

        impl Default for MessageLimits {
            fn default() -> Self {
                Self::both(Self::DEFAULT_BYTES)
            }
        }
    }
}

/// `generated/src/pb/mod.rs`: one inline module per package segment, each including the
/// prost-build file of its package (`include!("acme.chat.v1.rs")`).
pub fn pb_mod_rs(modules: &BTreeMap<Vec<String>, String>) -> TokenStream {
    let mut tree = Node::default();
    for module in modules.keys() {
        let mut node = &mut tree;
        for segment in module {
            node = node.children.entry(segment.clone()).or_default();
        }
        node.file = Some(pb_file_name(module));
    }
    let body = tree.tokens();
    quote! {
        //! Protobuf messages and tonic servers/clients, one module per proto package.

        #body
    }
}

/// File name of a package's prost-build output inside `generated/src/pb/`.
pub fn pb_file_name(module: &[String]) -> String {
    let parts: Vec<&str> = module
        .iter()
        .map(|part| part.strip_prefix("r#").unwrap_or(part))
        .collect();
    format!("{}.rs", parts.join("."))
}

#[derive(Default)]
struct Node {
    file: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn tokens(&self) -> TokenStream {
        let include = match &self.file {
            Some(file) => quote!(include!(#file);),
            None => quote!(),
        };
        let children = self.children.iter().map(|(name, child)| {
            let name = ident(name);
            let body = child.tokens();
            quote! {
                pub mod #name {
                    #body
                }
            }
        });
        quote! {
            #include
            #(#children)*
        }
    }
}

/// Module file path (below `generated/src/`) of a package module: `["acme", "chat"]` →
/// `acme/chat.rs`.
pub fn module_file(module: &[String]) -> String {
    let parts: Vec<&str> = module
        .iter()
        .map(|part| part.strip_prefix("r#").unwrap_or(part))
        .collect();
    format!("{}.rs", parts.join("/"))
}

/// `pub mod child;` declarations for a module file's children.
pub fn child_declarations(children: &BTreeSet<String>) -> TokenStream {
    let children = children.iter().map(|child| {
        let child = ident(child);
        quote!(pub mod #child;)
    });
    quote!(#(#children)*)
}
