//! The `beehive` binary's commands, as a library so end-to-end tests can run them in-process.

pub mod bench;
pub mod cli;
pub mod clients;
pub mod config;
pub mod corpus;
pub mod replay;
pub mod rss;
pub mod stack;
pub mod stats;
pub mod token;
