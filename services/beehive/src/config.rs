//! Configuration loading for every command: `--config PATH`, else `etc/beehive.yaml` when
//! present, then `BEEHIVE_` environment variables.

use std::path::Path;

use anyhow::Context as _;
use beehive_runtime::config::Config;

/// Loads and validates the configuration.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(path).context("failed to load the configuration")
}
