//! Helpers for tests that need a real backend.

/// Environment variable with the PostgreSQL URL for tests.
pub const POSTGRES_URL_VAR: &str = "BEEHIVE_TEST_POSTGRES_URL";
/// Environment variable with the MySQL/MariaDB URL for tests.
pub const MYSQL_URL_VAR: &str = "BEEHIVE_TEST_MYSQL_URL";
/// Environment variable with the Redis URL for tests.
pub const REDIS_URL_VAR: &str = "BEEHIVE_TEST_REDIS_URL";
/// Environment variable with the RabbitMQ URL for tests.
pub const AMQP_URL_VAR: &str = "BEEHIVE_TEST_AMQP_URL";
/// Environment variable with comma-separated etcd endpoints for tests.
pub const ETCD_ENDPOINTS_VAR: &str = "BEEHIVE_TEST_ETCD_ENDPOINTS";

/// Reads a backend URL for a test from `var`.
///
/// When the variable is unset the test is skipped with a line saying so, except under CI
/// (`CI` set), where every backend runs and a missing one is a failure: this function panics.
pub fn backend_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is unset, but CI runs every backend: set it in .ci/run")
        }
        _ => {
            eprintln!("skipped: {var} is unset, so this test did not run against its backend");
            None
        }
    }
}
