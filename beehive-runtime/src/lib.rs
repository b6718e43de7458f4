//! Beehive's runtime: everything generated adapters and hand-written logic share at run time.
//!
//! The core (errors, call context, the [`rpc::Handle`] contract) is small and stable; serving
//! (config, server, auth, discovery, clients) and backends (database, cache, bus, search, mail,
//! storage) build on it.

pub mod client;
pub mod context;
pub mod error;
pub mod observe;
pub mod rpc;
pub mod testing;
pub mod trace;

pub use context::{CallContext, Caller};
pub use error::{ServiceError, ServiceResult};
pub use rpc::{Access, Handle, Rpc, Validate};
pub mod mail;
pub mod storage;
pub mod auth;
pub mod config;
pub mod bus;
pub mod layer;
pub mod shed;
pub mod discovery;
pub mod telemetry;
pub mod balance;
pub mod breaker;
pub mod server;
pub mod validate;
pub mod db;
pub mod cache;
pub mod search;
pub mod backends;
pub mod rate_limit;
