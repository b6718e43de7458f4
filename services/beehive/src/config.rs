//! Configuration loading for every command: `--config PATH`, else `etc/beehive.yaml` when
//! present, then `BEEHIVE_` environment variables.

use std::path::Path;

use anyhow::Context as _;
use beehive_runtime::config::{Config, DEFAULT_CONFIG_PATH};

/// Loads and validates the configuration.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let loaded = match path {
        Some(path) => Config::load(Some(path)),
        None if Path::new(DEFAULT_CONFIG_PATH).is_file() => Config::load(None),
        None => {
            // NOTE: `Config::load(None)` fails when `etc/beehive.yaml` is missing, so an empty
            // file stands in for it and the defaults plus the environment apply.
            let empty = tempfile::NamedTempFile::new()
                .context("failed to create an empty configuration file")?;
            Config::load(Some(empty.path()))
        }
    };
    loaded.context("failed to load the configuration")
}
