//! Configuration errors name the key, whether the value came from YAML or the environment.

use beehive_runtime::config::{AuthMode, BalancerKind, Config, ConfigError};

fn error_of(result: Result<Config, ConfigError>) -> ConfigError {
    match result {
        Ok(config) => panic!("configuration was accepted: {config:?}"),
        Err(err) => err,
    }
}

#[test]
fn yaml_overrides_defaults() {
    let yaml = "
services:
  user:
    listen: 127.0.0.1:0
  chat:
    balancer: consistent_hash
auth:
  mode: trust
  jwt_secret: 12345678901234567890
";
    let config = Config::from_yaml(yaml).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.services.user.listen.port(), 0);
    assert_eq!(config.services.user.balancer, BalancerKind::P2c);
    assert_eq!(config.services.chat.balancer, BalancerKind::ConsistentHash);
    assert_eq!(config.services.chat.listen.port(), 8004);
    assert_eq!(config.auth.mode, AuthMode::Trust);
    assert_eq!(config.auth.jwt_secret, "12345678901234567890");
    assert_eq!(config.auth.bcrypt_cost, 12);
}

#[test]
fn cache_key_prefix_defaults_and_overrides() {
    assert_eq!(Config::default().cache.key_prefix, "beehive:");
    let config = Config::from_yaml("cache:\n  key_prefix: \"staging:\"\n")
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.cache.key_prefix, "staging:");
    assert_eq!(config.cache.default_ttl_secs, 604_800);
}

#[test]
fn unknown_top_level_key_named() {
    let err = error_of(Config::from_yaml("databse:\n  url: sqlite://x.db\n"));
    assert_eq!(err.key(), Some("databse"));
    assert!(err.to_string().contains("unknown key"), "{err}");
}

#[test]
fn unknown_nested_key_named() {
    let err = error_of(Config::from_yaml(
        "services:\n  user:\n    lisen: 127.0.0.1:1\n",
    ));
    assert_eq!(err.key(), Some("services.user.lisen"));
}

#[test]
fn unknown_service_named() {
    let err = error_of(Config::from_yaml(
        "services:\n  gateway:\n    listen: 127.0.0.1:1\n",
    ));
    assert_eq!(err.key(), Some("services.gateway"));
}

#[test]
fn bad_address_named() {
    let err = error_of(Config::from_yaml(
        "services:\n  file:\n    listen: not-an-address\n",
    ));
    assert_eq!(err.key(), Some("services.file.listen"));
}

#[test]
fn bad_enum_value_named() {
    let err = error_of(Config::from_yaml(
        "services:\n  chat:\n    balancer: fastest\n",
    ));
    assert_eq!(err.key(), Some("services.chat.balancer"));
    assert!(err.to_string().contains("fastest"), "{err}");
}

#[test]
fn bcrypt_cost_out_of_range_named() {
    let err = error_of(Config::from_yaml("auth:\n  bcrypt_cost: 3\n"));
    assert_eq!(err.key(), Some("auth.bcrypt_cost"));
    assert!(err.to_string().contains("from 4 to 31"), "{err}");
    let err = error_of(Config::from_yaml("auth:\n  bcrypt_cost: 32\n"));
    assert_eq!(err.key(), Some("auth.bcrypt_cost"));
}

#[test]
fn small_message_limit_named() {
    let err = error_of(Config::from_yaml("server:\n  max_message_bytes: 5242880\n"));
    assert_eq!(err.key(), Some("server.max_message_bytes"));
}

#[test]
fn message_size_limits_named() {
    let err = error_of(Config::from_yaml("message:\n  max_content_chars: 10001\n"));
    assert_eq!(err.key(), Some("message.max_content_chars"));
    let err = error_of(Config::from_yaml("message:\n  max_content_chars: 0\n"));
    assert_eq!(err.key(), Some("message.max_content_chars"));
    let err = error_of(Config::from_yaml(
        "message:\n  max_extra_data_bytes: 1048576\n",
    ));
    assert_eq!(err.key(), Some("message.max_extra_data_bytes"));
    assert!(
        err.to_string().contains("server.max_message_bytes"),
        "{err}"
    );

    let config = Config::from_yaml(
        "server:\n  max_message_bytes: 134217728\nmessage:\n  max_extra_data_bytes: 1048576\n",
    )
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.message.max_extra_data_bytes, 1_048_576);
    assert_eq!(config.message.max_content_chars, 10_000);
}

#[test]
fn duplicate_listen_address_named() {
    let err = error_of(Config::from_yaml(
        "services:\n  friend:\n    listen: 127.0.0.1:8001\n",
    ));
    assert_eq!(err.key(), Some("services.friend.listen"));
    assert!(err.to_string().contains("services.user.listen"), "{err}");
}

#[test]
fn bad_url_scheme_named() {
    let err = error_of(Config::from_yaml(
        "cache:\n  redis_url: http://127.0.0.1:6379\n",
    ));
    assert_eq!(err.key(), Some("cache.redis_url"));
}

#[test]
fn bad_static_address_named() {
    let err = error_of(Config::from_yaml(
        "discovery:\n  static:\n    user: [\"127.0.0.1\"]\n",
    ));
    assert_eq!(err.key(), Some("discovery.static.user[0]"));
}

#[test]
fn missing_explicit_file_rejected() {
    let path = std::path::Path::new("/nonexistent/beehive.yaml");
    let err = error_of(Config::load(Some(path)));
    assert!(matches!(err, ConfigError::File { .. }), "{err}");
}

#[test]
fn file_value_error_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let path = dir.path().join("beehive.yaml");
    std::fs::write(&path, "log:\n  format: xml\n").unwrap_or_else(|err| panic!("{err}"));
    let err = error_of(Config::load(Some(&path)));
    assert_eq!(err.key(), Some("log.format"));
    assert!(err.to_string().contains("beehive.yaml"), "{err}");
}

#[test]
fn load_without_default_file_uses_defaults() {
    // Tests run in the crate folder, which has no `etc/beehive.yaml`.
    assert!(!std::path::Path::new("etc/beehive.yaml").exists());
    let config = Config::load(None).unwrap_or_else(|err| panic!("defaults were refused: {err}"));
    assert_eq!(config.services.user.listen.to_string(), "127.0.0.1:8001");
    assert_eq!(config.services.search.listen.to_string(), "127.0.0.1:8006");
}
