//! Environment overrides; one test, because the process environment is shared by all threads.

use beehive_runtime::config::{AuthMode, Config};

fn set(key: &str, value: &str) {
    // SAFETY: this test binary has one test, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var(key, value) };
}

fn unset(key: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(key) };
}

#[test]
fn environment_overrides_and_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let path = dir.path().join("beehive.yaml");
    std::fs::write(
        &path,
        "auth:\n  mode: trust\nchat:\n  max_group_members: 50\n",
    )
    .unwrap_or_else(|err| panic!("{err}"));

    set("BEEHIVE_CHAT__MAX_GROUP_MEMBERS", "70");
    set("BEEHIVE_SERVICES__USER__LISTEN", "127.0.0.1:0");
    set(
        "BEEHIVE_DISCOVERY__ETCD_ENDPOINTS",
        "127.0.0.1:2379,127.0.0.1:22379",
    );
    set("BEEHIVE_TEST_SOMETHING", "ignored");
    set("BEEHIVE_CACHE__KEY_PREFIX", "staging:");
    let config = Config::load(Some(&path)).unwrap_or_else(|err| panic!("{err}"));
    unset("BEEHIVE_CACHE__KEY_PREFIX");
    assert_eq!(config.cache.key_prefix, "staging:");
    assert_eq!(config.auth.mode, AuthMode::Trust);
    assert_eq!(config.chat.max_group_members, 70);
    assert_eq!(config.services.user.listen.port(), 0);
    assert_eq!(
        config.discovery.etcd_endpoints,
        vec!["127.0.0.1:2379".to_owned(), "127.0.0.1:22379".to_owned()]
    );

    set("BEEHIVE_AUTH__MODE", "open");
    let err = Config::load(Some(&path)).err();
    unset("BEEHIVE_AUTH__MODE");
    let err = err.unwrap_or_else(|| panic!("auth.mode `open` was accepted"));
    assert_eq!(err.key(), Some("auth.mode"));
    assert!(err.to_string().contains("BEEHIVE_AUTH__MODE"), "{err}");

    set("BEEHIVE_AUTH__BCRYPT_COST", "40");
    let err = Config::load(Some(&path)).err();
    unset("BEEHIVE_AUTH__BCRYPT_COST");
    assert_eq!(
        err.as_ref().and_then(|err| err.key()),
        Some("auth.bcrypt_cost")
    );

    set("BEEHIVE_AUTH__JWT_SECRT", "x");
    let err = Config::load(Some(&path)).err();
    unset("BEEHIVE_AUTH__JWT_SECRT");
    assert_eq!(
        err.as_ref().and_then(|err| err.key()),
        Some("auth.jwt_secrt")
    );

    unset("BEEHIVE_CHAT__MAX_GROUP_MEMBERS");
    unset("BEEHIVE_SERVICES__USER__LISTEN");
    unset("BEEHIVE_DISCOVERY__ETCD_ENDPOINTS");
    unset("BEEHIVE_TEST_SOMETHING");
}
