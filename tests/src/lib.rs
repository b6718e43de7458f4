//! Shared helpers for the end-to-end tests.

pub mod corpus;
pub mod deploy;
pub mod story;
