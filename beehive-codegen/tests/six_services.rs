//! Snapshots every file `cargo xtask gen` emits from the workspace's `proto/` for the six
//! services, and checks the IR carries the access rules and input rules the protos declare.

mod common;

use beehive_codegen::proto::ir::{Access, Package};

fn generate() -> beehive_codegen::proto::ProtoOutput {
    let sources = common::read_protos(&common::workspace_root().join("proto"));
    common::generate(sources).expect("the workspace protos generate")
}

#[test]
fn six_services_emit_as_snapshotted() {
    let output = generate();
    for file in output.files.iter().chain(&output.stubs) {
        common::assert_parses(&file.path, &file.contents);
        insta::assert_snapshot!(common::snapshot_name("six", &file.path), &file.contents);
    }
}

fn package<'a>(packages: &'a [Package], name: &str) -> &'a Package {
    packages
        .iter()
        .find(|package| package.name == name)
        .unwrap_or_else(|| panic!("package {name} is missing"))
}

#[test]
fn access_rules_follow_the_protos() {
    let output = generate();
    let packages = &output.ir.packages;
    let access = |pkg: &str, rpc: &str| -> Access {
        package(packages, pkg)
            .services
            .iter()
            .flat_map(|service| &service.rpcs)
            .find(|r| r.name == rpc)
            .unwrap_or_else(|| panic!("RPC {pkg}.{rpc} is missing"))
            .access
    };
    for rpc in ["Register", "Login", "SendVerificationCode", "VerifyCode"] {
        assert_eq!(access("user", rpc), Access::Public, "{rpc}");
    }
    assert_eq!(access("user", "GetUserInfo"), Access::Authenticated);
    assert_eq!(access("chat", "UpdateUnreadCount"), Access::Service);
    assert_eq!(access("search", "IndexMessage"), Access::Service);
    assert_eq!(access("search", "DeleteMessageIndex"), Access::Service);
    assert_eq!(access("search", "SearchMessages"), Access::Authenticated);
}

#[test]
fn every_service_has_one_stub_per_rpc() {
    let output = generate();
    let rpc_count: usize = output
        .ir
        .packages
        .iter()
        .flat_map(|package| &package.services)
        .map(|service| service.rpcs.len())
        .sum();
    assert_eq!(output.stubs.len(), rpc_count);
    assert_eq!(rpc_count, 9 + 7 + 5 + 9 + 9 + 3);
}

#[test]
fn generation_is_byte_stable() {
    let first = generate();
    let second = generate();
    assert_eq!(first.files, second.files);
    assert_eq!(first.descriptor_set, second.descriptor_set);
}
