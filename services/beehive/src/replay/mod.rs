//! `beehive replay`: drives the chitchat corpus through the public RPCs.

pub mod api;
pub mod plan;
pub mod run;
pub mod summary;

#[cfg(test)]
mod fake;
