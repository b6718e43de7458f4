//! Reads the IR's service groups and emits what ties hand-written logic to the glue: the
//! logic-modules macros, logic stubs, and a first `lib.rs` for a service crate.

use proc_macro2::TokenStream;
use quote::quote;

use super::{doc_lines, external_type, inner_doc_lines};
use crate::naming::{ident, module_ident};
use crate::proto::ir::{Package, ProtoIr, Rpc, Service, ServiceGroup};

/// Name of the macro that declares a service crate's logic modules: `user_logic_modules`.
pub fn macro_name(group: &ServiceGroup) -> String {
    format!("{}_logic_modules", group.name)
}

/// `generated/src/logic_modules.rs`: per service group, a macro expanding to
/// `pub mod logic { pub mod <rpc>; ... }`, so a service crate's `lib.rs` invokes it once and
/// no list of RPCs is maintained by hand.
pub fn logic_modules_rs(ir: &ProtoIr) -> TokenStream {
    let macros = ir.service_groups.iter().map(|group| {
        let name = ident(&macro_name(group));
        let modules = group.file_stems.iter().map(|stem| module_ident(stem));
        let doc = doc_lines(&format!(
            "Declares `pub mod logic` of the `{}` service crate, one module per RPC \
             (`src/logic/<rpc>.rs`). Invoke it once in the crate's `lib.rs`.",
            group.name
        ));
        quote! {
            #doc
            #[macro_export]
            macro_rules! #name {
                () => {
                    /// Hand-written logic, one module per RPC.
                    pub mod logic {
                        #(pub mod #modules;)*
                    }
                };
            }
        }
    });
    quote! {
        //! Macros declaring each service crate's logic modules from the RPCs in its protos.

        #(#macros)*
    }
}

/// Rust path of a service's glue module as seen from a service crate.
pub fn glue_path(package: &Package, service: &Service) -> TokenStream {
    let segments = package.module.iter().map(|segment| ident(segment));
    let service_module = service.module.as_ref().map(|module| {
        let module = ident(module);
        quote!(::#module)
    });
    quote!(beehive_generated #(:: #segments)* #service_module)
}

/// Emits a logic stub returning UNIMPLEMENTED, written only when `logic/<rpc>.rs` is missing.
pub fn stub(package: &Package, service: &Service, rpc: &Rpc) -> TokenStream {
    let glue = glue_path(package, service);
    let marker = ident(&rpc.marker);
    let service_type = ident(&service.trait_name);
    let request = external_type(&rpc.input.path);
    let message = external_type(&rpc.output.path);
    let response = if rpc.server_streaming {
        quote!(::beehive_runtime::rpc::ServiceStream<#message>)
    } else {
        message
    };
    let name = &rpc.name;
    let returns = if rpc.server_streaming {
        format!("a stream of `{}`", rpc.output.full_name)
    } else {
        format!("`{}`", rpc.output.full_name)
    };
    let mut text = format!(
        "`{name}` (`/{}/{name}`): takes `{}`, returns {returns}.",
        service.full_name, rpc.input.full_name
    );
    if let Some(comment) = &rpc.comment {
        text.push_str("\n\n");
        text.push_str(comment);
    }
    let doc = inner_doc_lines(&text);
    quote! {
        #doc

        use #glue::rpc;
        use beehive_runtime::{CallContext, Handle, ServiceError};

        impl Handle<rpc::#marker> for crate::#service_type {
            async fn handle(
                &self,
                _ctx: CallContext,
                _request: #request,
            ) -> Result<#response, ServiceError> {
                Err(ServiceError::Unimplemented(#name.to_owned()))
            }
        }
    }
}

/// A service crate's first `lib.rs`: its doc line, the logic-modules macro call and the unit
/// structs the stubs implement `Handle` for.
pub fn service_lib_rs(doc_line: &str, group: &ServiceGroup) -> TokenStream {
    let doc = inner_doc_lines(doc_line);
    let macro_name = ident(&macro_name(group));
    let structs = group.services.iter().map(|(_, service)| {
        let name = ident(&crate::naming::to_upper_camel(service));
        let doc =
            format!(" Logic of `{service}`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.");
        quote! {
            #[doc = #doc]
            pub struct #name;
        }
    });
    quote! {
        #doc

        beehive_generated::#macro_name!();

        #(#structs)*
    }
}
