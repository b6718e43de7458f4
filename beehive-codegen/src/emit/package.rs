//! Reads a [`Package`] and emits its module of glue: each service's items and the input checks
//! of its messages.

use proc_macro2::TokenStream;
use quote::quote;

use super::{inner_doc_lines, service, validate};
use crate::naming::ident;
use crate::proto::ir::Package;

/// The body of the package's module file (children are declared by the caller).
pub fn package_module(package: &Package, needs_validation: &dyn Fn(&str) -> bool) -> TokenStream {
    let files = package
        .files
        .iter()
        .map(|file| format!("`proto/{file}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let doc = inner_doc_lines(&format!(
        "Glue of proto package `{}` ({files}): RPC markers, adapters, servers and clients, and \
         the input checks of its messages.",
        package.name
    ));

    let services = package.services.iter().map(|svc| {
        let items = service::service_items(package, svc);
        match &svc.module {
            None => items,
            Some(module) => {
                let module = ident(module);
                let module_doc = format!(" Glue of `{}`.", svc.full_name);
                quote! {
                    #[doc = #module_doc]
                    pub mod #module {
                        #items
                    }
                }
            }
        }
    });
    let checks = package
        .messages
        .iter()
        .map(|message| validate::message_impls(message, needs_validation));

    quote! {
        #doc
        #(#services)*
        #(#checks)*
    }
}
