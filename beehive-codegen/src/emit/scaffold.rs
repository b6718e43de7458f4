//! Reads a new service's name and emits the Rust files of its crate skeleton: a `main.rs` that
//! serves it alone, and a test that calls its example RPC over a real connection.

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::quote;

use crate::naming::ident;

/// Names derived from a service name such as `inventory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNames {
    /// `inventory`: proto package, glue module and folder names.
    pub name: String,
    /// `beehive_inventory`: the crate's Rust name.
    pub crate_ident: String,
    /// `InventoryService`: the proto service and the logic struct.
    pub service: String,
    /// `InventoryClient`: the typed client.
    pub client: String,
}

impl ServiceNames {
    pub fn new(name: &str) -> Self {
        let camel = name.to_upper_camel_case();
        Self {
            name: name.to_owned(),
            crate_ident: format!("beehive_{name}"),
            service: format!("{camel}Service"),
            client: format!("{camel}Client"),
        }
    }
}

/// `src/main.rs`: serves the service alone on the address given as the first argument.
pub fn main_rs(names: &ServiceNames) -> TokenStream {
    let krate = ident(&names.crate_ident);
    let module = ident(&names.name);
    let service = ident(&names.service);
    let doc = format!(
        " Serves the {} service alone: `cargo run -p beehive-{} -- [ADDR]`.",
        names.name, names.name
    );
    quote! {
        #![doc = #doc]

        use std::net::SocketAddr;
        use std::sync::Arc;

        /// Address served when none is given; port 0 lets the system pick a free port.
        const DEFAULT_ADDR: &str = "127.0.0.1:0";

        #[tokio::main]
        async fn main() -> Result<(), Box<dyn std::error::Error>> {
            let addr: SocketAddr = std::env::args()
                .nth(1)
                .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
                .parse()?;
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("{} listening on {}", beehive_generated::#module::SERVICE_NAME, listener.local_addr()?);

            let service = beehive_generated::#module::server(
                Arc::new(#krate::#service),
                beehive_generated::MessageLimits::default(),
            );
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await?;
            Ok(())
        }
    }
}

/// `tests/serve.rs`: serves the service on a loopback port and calls `Echo` with the typed
/// client.
pub fn serve_test_rs(names: &ServiceNames) -> TokenStream {
    let krate = ident(&names.crate_ident);
    let module = ident(&names.name);
    let service = ident(&names.service);
    let client = ident(&names.client);
    let doc = format!(
        " Serves the {} service on a loopback port and calls it over gRPC.",
        names.name
    );
    quote! {
        #![doc = #doc]

        use std::sync::Arc;

        use beehive_generated::#module::{#client, server};
        use beehive_generated::pb::#module::EchoRequest;
        use beehive_runtime::ServiceError;
        use beehive_runtime::client::ServiceChannel;

        #[tokio::test]
        async fn echo_reaches_the_logic() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let service = server(Arc::new(#krate::#service), beehive_generated::MessageLimits::default());
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );

            let channel = ServiceChannel::lazy(&format!("http://{addr}")).unwrap();
            let client = #client::new(channel);
            let outcome = client
                .echo(tonic::Request::new(EchoRequest { text: "hello".to_owned() }))
                .await;

            // The stub in `logic/echo.rs` returns UNIMPLEMENTED; replace this check with the
            // expected reply once the logic is written.
            match outcome {
                Err(ServiceError::Downstream(status)) => {
                    assert_eq!(status.code(), tonic::Code::Unimplemented);
                    assert!(status.message().contains("Echo"), "{}", status.message());
                }
                other => panic!("expected UNIMPLEMENTED from the stub, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn input_rules_reject_before_the_logic() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let service = server(Arc::new(#krate::#service), beehive_generated::MessageLimits::default());
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );

            let channel = ServiceChannel::lazy(&format!("http://{addr}")).unwrap();
            let client = #client::new(channel);
            let outcome = client
                .echo(tonic::Request::new(EchoRequest { text: String::new() }))
                .await;

            match outcome {
                Err(ServiceError::Downstream(status)) => {
                    assert_eq!(status.code(), tonic::Code::InvalidArgument);
                    assert!(status.message().contains("`text`"), "{}", status.message());
                }
                other => panic!("expected INVALID_ARGUMENT for an empty text, got {other:?}"),
            }
        }
    }
}
