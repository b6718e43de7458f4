//! Beehive's runtime: everything generated adapters and hand-written logic share at run time.
//!
//! The core (errors, call context, the [`rpc::Handle`] contract) is small and stable; serving
//! (config, server, auth, discovery, clients) and backends (database, cache, bus, search, mail,
//! storage) build on it.

pub mod auth;
pub mod backends;
pub mod balance;
pub mod breaker;
pub mod bus;
pub mod cache;
pub mod client;
pub mod config;
pub mod context;
pub mod db;
pub mod decode_error;
pub mod discovery;
pub mod error;
pub mod layer;
pub mod mail;
pub mod observe;
pub mod rate_limit;
pub mod rpc;
pub mod search;
pub mod server;
pub mod shed;
pub mod storage;
pub mod telemetry;
pub mod testing;
pub mod token_users;
pub mod trace;
pub mod validate;

pub use context::{CallContext, Caller};
pub use error::{ServiceError, ServiceResult};
pub use rpc::{Access, Handle, Rpc, Validate};
