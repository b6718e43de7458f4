//! `cargo xtask new-service NAME`.

use std::path::Path;

use anyhow::Result;

pub fn run(_root: &Path, name: &str) -> Result<()> {
    anyhow::bail!("new-service is not available yet (requested `{name}`)")
}
