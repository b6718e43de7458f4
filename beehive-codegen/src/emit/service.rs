//! Reads a [`Service`] and emits its glue: RPC markers, the `Logic` bound, the tonic adapter,
//! the `server` constructor and the typed client.

use proc_macro2::TokenStream;
use quote::quote;

use super::{doc_lines, rust_type};
use crate::naming::ident;
use crate::proto::ir::{Access, Package, Rpc, Service};

/// The items of one service, to sit in its package module (or in a module of its own).
pub fn service_items(package: &Package, service: &Service) -> TokenStream {
    let full_name = &service.full_name;
    let pb_module = pb_module(package);
    let server_module = ident(&service.server_module);
    let client_module = ident(&service.client_module);
    let trait_name = ident(&service.trait_name);
    let server_type = ident(&format!("{}Server", service.trait_name));
    let client_type = ident(&format!("{}Client", service.trait_name));
    let client_name = ident(&service.client_name);
    let markers: Vec<TokenStream> = service
        .rpcs
        .iter()
        .map(|rpc| marker(service, rpc))
        .collect();
    let marker_idents: Vec<_> = service.rpcs.iter().map(|rpc| ident(&rpc.marker)).collect();

    let service_name_doc = format!(" Fully qualified name of `{full_name}`.");
    let logic_doc = doc_lines(&format!(
        "Every `Handle` impl `{full_name}` needs; implemented for any type that has them all.\n\
         A missing impl is a compile error naming the RPC's marker."
    ));
    let adapter_doc = doc_lines(&format!(
        "Serves a `Logic` implementation as `{full_name}`: each RPC runs through the runtime's \
         driver (access rule, validation, deadline, logic, error mapping, logs and metrics)."
    ));
    let adapter_methods = service.rpcs.iter().map(adapter_method);
    let client_methods = service.rpcs.iter().map(client_method);
    let client_doc = doc_lines(&format!(
        "Typed client of `{full_name}`: returns the response message or a `ServiceError`, and \
         records each call's metrics."
    ));

    quote! {
        #[doc = #service_name_doc]
        pub const SERVICE_NAME: &str = #full_name;

        /// Marker types, one per RPC, implementing `beehive_runtime::rpc::Rpc`.
        pub mod rpc {
            #(#markers)*
        }

        #logic_doc
        pub trait Logic: Send + Sync + 'static #(+ ::beehive_runtime::rpc::Handle<rpc::#marker_idents>)* {}

        impl<S> Logic for S where S: Send + Sync + 'static #(+ ::beehive_runtime::rpc::Handle<rpc::#marker_idents>)* {}

        #adapter_doc
        pub struct Adapter<S> {
            service: ::std::sync::Arc<S>,
        }

        impl<S> Adapter<S> {
            pub fn new(service: ::std::sync::Arc<S>) -> Self {
                Self { service }
            }
        }

        #[::tonic::async_trait]
        impl<S: Logic> #pb_module::#server_module::#trait_name for Adapter<S> {
            #(#adapter_methods)*
        }

        /// The tonic server type `server` returns.
        pub type Server<S> = #pb_module::#server_module::#server_type<Adapter<S>>;

        /// Builds the tonic server for `service` with the given message size limits.
        pub fn server<S: Logic>(service: ::std::sync::Arc<S>, limits: crate::MessageLimits) -> Server<S> {
            #pb_module::#server_module::#server_type::new(Adapter::new(service))
                .max_decoding_message_size(limits.max_decoding_message_size)
                .max_encoding_message_size(limits.max_encoding_message_size)
        }

        #client_doc
        #[derive(Clone)]
        pub struct #client_name {
            inner: #pb_module::#client_module::#client_type<::beehive_runtime::client::ServiceChannel>,
        }

        impl #client_name {
            /// A client with the default message size limits.
            pub fn new(channel: ::beehive_runtime::client::ServiceChannel) -> Self {
                Self::with_limits(channel, crate::MessageLimits::default())
            }

            /// A client with the given message size limits.
            pub fn with_limits(
                channel: ::beehive_runtime::client::ServiceChannel,
                limits: crate::MessageLimits,
            ) -> Self {
                let inner = #pb_module::#client_module::#client_type::new(channel)
                    .max_decoding_message_size(limits.max_decoding_message_size)
                    .max_encoding_message_size(limits.max_encoding_message_size);
                Self { inner }
            }

            #(#client_methods)*
        }
    }
}

fn pb_module(package: &Package) -> TokenStream {
    let segments = package.module.iter().map(|segment| ident(segment));
    quote!(crate::pb #(:: #segments)*)
}

fn access_tokens(access: Access) -> TokenStream {
    match access {
        Access::Public => quote!(::beehive_runtime::rpc::Access::Public),
        Access::Authenticated => quote!(::beehive_runtime::rpc::Access::Authenticated),
        Access::Service => quote!(::beehive_runtime::rpc::Access::Service),
    }
}

fn access_word(access: Access) -> &'static str {
    match access {
        Access::Public => "public",
        Access::Authenticated => "authenticated callers",
        Access::Service => "service tokens only",
    }
}

fn marker(service: &Service, rpc: &Rpc) -> TokenStream {
    let marker = ident(&rpc.marker);
    let request = rust_type(&rpc.input.path);
    let message = rust_type(&rpc.output.path);
    let response = if rpc.server_streaming {
        quote!(::beehive_runtime::rpc::ServiceStream<#message>)
    } else {
        message
    };
    let service_name = &service.full_name;
    let method = &rpc.name;
    let path = format!("/{}/{}", service.full_name, rpc.name);
    let access = access_tokens(rpc.access);
    let returns = if rpc.server_streaming {
        format!("a stream of `{}`", rpc.output.full_name)
    } else {
        format!("`{}`", rpc.output.full_name)
    };
    let mut text = String::new();
    if let Some(comment) = &rpc.comment {
        text.push_str(comment);
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "`{path}`: takes `{}`, returns {returns}; open to {}.",
        rpc.input.full_name,
        access_word(rpc.access)
    ));
    let doc = doc_lines(&text);
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct #marker;

        impl ::beehive_runtime::rpc::Rpc for #marker {
            type Request = #request;
            type Response = #response;
            const SERVICE: &'static str = #service_name;
            const METHOD: &'static str = #method;
            const PATH: &'static str = #path;
            const ACCESS: ::beehive_runtime::rpc::Access = #access;
        }
    }
}

fn adapter_method(rpc: &Rpc) -> TokenStream {
    let method = ident(&rpc.method);
    let marker = ident(&rpc.marker);
    let request = rust_type(&rpc.input.path);
    let message = rust_type(&rpc.output.path);
    if rpc.server_streaming {
        let stream = ident(&format!("{}Stream", rpc.name));
        quote! {
            type #stream = ::beehive_runtime::rpc::StatusStream<#message>;

            async fn #method(
                &self,
                request: ::tonic::Request<#request>,
            ) -> ::std::result::Result<::tonic::Response<Self::#stream>, ::tonic::Status> {
                ::beehive_runtime::rpc::run_server_streaming::<rpc::#marker, S, #message>(&self.service, request).await
            }
        }
    } else {
        quote! {
            async fn #method(
                &self,
                request: ::tonic::Request<#request>,
            ) -> ::std::result::Result<::tonic::Response<#message>, ::tonic::Status> {
                ::beehive_runtime::rpc::run_unary::<rpc::#marker, S>(&self.service, request).await
            }
        }
    }
}

fn client_method(rpc: &Rpc) -> TokenStream {
    let method = ident(&rpc.method);
    let marker = ident(&rpc.marker);
    let request = rust_type(&rpc.input.path);
    let message = rust_type(&rpc.output.path);
    let returns = if rpc.server_streaming {
        quote!(::tonic::Streaming<#message>)
    } else {
        message
    };
    let doc = format!(" Calls `{}`.", rpc.name);
    quote! {
        #[doc = #doc]
        pub async fn #method(
            &self,
            request: ::tonic::Request<#request>,
        ) -> ::std::result::Result<#returns, ::beehive_runtime::ServiceError> {
            let mut inner = self.inner.clone();
            let started = ::std::time::Instant::now();
            let outcome = inner.#method(request).await;
            let code = match &outcome {
                Ok(_) => ::tonic::Code::Ok,
                Err(status) => status.code(),
            };
            ::beehive_runtime::observe::record_client_call(
                <rpc::#marker as ::beehive_runtime::rpc::Rpc>::PATH,
                code,
                started.elapsed(),
            );
            outcome
                .map(::tonic::Response::into_inner)
                .map_err(::beehive_runtime::ServiceError::from)
        }
    }
}
