//! `beehive replay`: drives the chitchat corpus through the public RPCs.

pub mod plan;
