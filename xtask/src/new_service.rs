//! `cargo xtask new-service NAME`: a proto with one example RPC, a schema file with one table, a
//! service crate that serves it, and its line in the workspace members.

use std::path::Path;

use anyhow::{Context, Result, bail};
use beehive_codegen::emit::{render, scaffold};

/// Names a new service may not take: the generated crate's own modules, Rust keywords that
/// cannot be module names, and existing top-level folders.
const RESERVED: &[&str] = &[
    "pb",
    "entity",
    "migration",
    "model",
    "logic_modules",
    "beehive",
    "gen",
    "self",
    "super",
    "crate",
    "type",
    "mod",
    "fn",
    "impl",
    "struct",
    "enum",
    "async",
    "await",
    "match",
    "loop",
    "use",
    "pub",
    "tests",
];

/// Writes the scaffold of service `name` under `root`.
pub fn run(root: &Path, name: &str) -> Result<()> {
    check_name(name)?;
    let names = scaffold::ServiceNames::new(name);
    let proto = root
        .join("proto")
        .join(name)
        .join("v1")
        .join(format!("{name}.proto"));
    let crate_dir = root.join("services").join(name);
    if proto.exists() {
        bail!("{} already exists; pick another name", proto.display());
    }
    if crate_dir.exists() {
        bail!("{} already exists; pick another name", crate_dir.display());
    }

    write_new(&proto, &proto_text(&names))?;
    let schema_dir = root.join("schema");
    let schema = schema_dir.join(format!("{name}.schema"));
    if schema_dir.is_dir() {
        if schema.exists() {
            bail!("{} already exists; pick another name", schema.display());
        }
        write_new(&schema, &schema_text(name))?;
    }

    write_new(&crate_dir.join("Cargo.toml"), &cargo_toml(name))?;
    write_new(
        &crate_dir.join("src").join("lib.rs"),
        &format!("//! Hand-written logic of the {name} service.\n"),
    )?;
    let main_rs = crate_dir.join("src").join("main.rs");
    write_new(&main_rs, &render(scaffold::main_rs(&names))?)?;
    let test_rs = crate_dir.join("tests").join("serve.rs");
    write_new(&test_rs, &render(scaffold::serve_test_rs(&names))?)?;
    crate::gen_cmd::format_hand_written(&[main_rs, test_rs]);

    add_member(&root.join("Cargo.toml"), &format!("services/{name}"))?;

    println!("created service `{name}`:");
    println!("  {}", relative(root, &proto));
    if schema_dir.is_dir() {
        println!("  {}", relative(root, &schema));
    }
    println!(
        "  {}/ (added to the workspace members)",
        relative(root, &crate_dir)
    );
    println!(
        "next: `cargo xtask gen`, then `cargo run -p beehive-{name}` or `cargo test -p beehive-{name}`"
    );
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Accepts lowercase ASCII letters, digits and `_`, starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let well_formed = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        bail!(
            "invalid service name `{name}`: use lowercase letters, digits and `_`, starting with \
             a letter (e.g. `inventory`)"
        );
    }
    if RESERVED.contains(&name) {
        bail!("invalid service name `{name}`: the name is reserved; pick another");
    }
    Ok(())
}

fn write_new(path: &Path, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("failed to write {}", path.display()))
}

fn proto_text(names: &scaffold::ServiceNames) -> String {
    let name = &names.name;
    let service = &names.service;
    format!(
        r#"syntax = "proto3";

package {name};

import "beehive/options.proto";

// The {name} service.
service {service} {{
    // Returns the text it is sent. Public, so a fresh scaffold can be called without a token.
    rpc Echo(EchoRequest) returns (EchoResponse) {{
        option (beehive.access) = ACCESS_PUBLIC;
    }}
}}

// Text to echo.
message EchoRequest {{
    string text = 1 [(beehive.rules) = {{ min_chars: 1, max_chars: 1000 }}];
}}

// The echoed text.
message EchoResponse {{
    string text = 1;
}}
"#
    )
}

fn schema_text(name: &str) -> String {
    format!(
        "# Tables of the {name} service.\n\
         \n\
         table {name}_items {{\n    \
             id         bigint pk auto cached\n    \
             name       string(100)\n    \
             created_at timestamp default now\n\
         }}\n"
    )
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "beehive-{name}"
description = "Hand-written logic of the {name} service"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
beehive-runtime = {{ workspace = true }}
beehive-generated = {{ workspace = true }}
tonic = {{ workspace = true }}
prost = {{ workspace = true }}
tokio = {{ workspace = true }}
tokio-stream = {{ workspace = true }}
futures = {{ workspace = true }}
tracing = {{ workspace = true }}
"#
    )
}

/// Adds `member` to `[workspace] members` of the manifest at `path`, keeping its layout.
fn add_member(path: &Path, member: &str) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let Some(start) = text.find("members = [") else {
        bail!("{} has no `members = [` list", path.display());
    };
    let Some(end_offset) = text[start..].find(']') else {
        bail!("{}: the `members` list is not closed", path.display());
    };
    let end = start + end_offset;
    let quoted = format!("\"{member}\"");
    if text[start..end].contains(&quoted) {
        return Ok(());
    }
    let mut updated = String::with_capacity(text.len() + quoted.len() + 8);
    updated.push_str(&text[..end]);
    updated.push_str(&format!("    {quoted},\n"));
    updated.push_str(&text[end..]);
    std::fs::write(path, updated).with_context(|| format!("failed to write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("inventory").is_ok());
        assert!(check_name("audit_log2").is_ok());
        for bad in [
            "",
            "Inventory",
            "2fa",
            "in-ventory",
            "pb",
            "type",
            "gen",
            "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_is_added_once() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "[workspace]\nmembers = [\n    \"a\",\n]\n").unwrap();
        add_member(&manifest, "services/x").unwrap();
        add_member(&manifest, "services/x").unwrap();
        assert_eq!(
            std::fs::read_to_string(&manifest).unwrap(),
            "[workspace]\nmembers = [\n    \"a\",\n    \"services/x\",\n]\n"
        );
    }
}
