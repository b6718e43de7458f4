//! Typed configuration: defaults, then an optional YAML file, then `BEEHIVE_` environment variables.
//!
//! Environment variables use `__` between levels: `BEEHIVE_DATABASE__URL` sets `database.url`,
//! `BEEHIVE_SERVICES__USER__LISTEN` sets `services.user.listen`. `BEEHIVE_CONFIG` (the file path
//! some binaries read) and the test variables `BEEHIVE_TEST_*` are not configuration keys and are
//! skipped. Unknown keys and invalid values stop the start with an error that names the key's full
//! dotted path and the reason.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde::{Deserialize, Deserializer, Serialize};

/// File read by [`Config::load`] when no path is given; a missing file is not an error.
pub const DEFAULT_CONFIG_PATH: &str = "etc/beehive.yaml";
/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "BEEHIVE_";
/// Separator between key levels in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

/// JWT secret used when none is configured. Anyone can forge tokens with it, so starting with it
/// logs a warning; set `auth.jwt_secret` outside development.
pub const DEV_JWT_SECRET: &str = "beehive-development-secret-do-not-use-in-production";

/// Names of the six services, in port order.
pub const SERVICE_NAMES: [&str; 6] = ["user", "friend", "message", "chat", "file", "search"];

/// First port of the default service ports: user is 8001, friend 8002, and so on.
const FIRST_SERVICE_PORT: u16 = 8001;
const DEFAULT_ADMIN_PORT: u16 = 9100;
const MIB: u64 = 1024 * 1024;
/// Room for protobuf framing and the other fields of a message that carries a file part.
pub const MESSAGE_OVERHEAD_BYTES: u64 = 64 * 1024;
const MIN_JWT_SECRET_BYTES: usize = 16;

/// A configuration that could not be loaded or failed validation.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has an invalid value, is unknown, or breaks a rule.
    #[error("invalid configuration key `{key}`{origin}: {reason}")]
    Invalid {
        /// Full dotted path of the key, e.g. `services.user.listen`.
        key: String,
        /// Where the value came from, e.g. ` (from environment variable BEEHIVE_AUTH__MODE)`.
        origin: String,
        reason: String,
    },
    /// The configuration file is missing or is not valid YAML.
    #[error("cannot read configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            origin: String::new(),
            reason: reason.into(),
        }
    }

    /// The full dotted name of the offending key, if the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::File { .. } => None,
        }
    }
}

/// The whole configuration of a Beehive process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Folder of the embedded backends: SQLite file, search index, mail outbox, stored files.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub bus: BusConfig,
    pub search: SearchConfig,
    pub discovery: DiscoveryConfig,
    pub mail: MailConfig,
    pub auth: AuthConfig,
    pub services: ServicesConfig,
    pub admin: AdminConfig,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub verification: VerificationConfig,
    pub rate_limit: RateLimitConfig,
    pub login: LoginConfig,
    pub chat: ChatConfig,
    pub message: MessageConfig,
    pub file: FileConfig,
    pub friend: FriendConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…`, `postgres://…` or `mysql://…`; absent means a SQLite file in `data_dir`.
    pub url: Option<String>,
    /// Pool size; a SQLite file pool uses at most `db::SQLITE_MAX_CONNECTIONS` (4) of them.
    pub max_connections: u32,
    pub min_connections: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// `redis://…`; absent means the in-process cache.
    pub redis_url: Option<String>,
    pub default_ttl_secs: u64,
    /// Prefix put in front of every Redis key, so deployments with different prefixes can
    /// share one Redis server. Empty means none, and the in-process cache ignores it.
    pub key_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// `amqp://…`; absent means the in-process bus.
    pub amqp_url: Option<String>,
    /// Deliveries of one message before it goes to the dead-letter queue.
    pub max_retries: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// `http(s)://…`; absent means the embedded tantivy index in `data_dir`.
    pub elasticsearch_url: Option<String>,
    /// Lifetime of cached conversation memberships used to filter hits.
    pub membership_cache_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// etcd endpoints (`host:port`); empty means the static addresses below.
    #[serde(deserialize_with = "string_or_list")]
    pub etcd_endpoints: Vec<String>,
    /// Static addresses (`host:port`) per service name.
    #[serde(rename = "static")]
    pub static_addresses: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://…` or `smtps://…`; absent means `.eml` files in `<data_dir>/outbox/`.
    pub smtp_url: Option<String>,
    /// Sender address of outgoing mail.
    pub from: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret, at least 16 bytes.
    #[serde(deserialize_with = "lenient_string")]
    pub jwt_secret: String,
    pub mode: AuthMode,
    /// bcrypt cost factor, 4 to 31.
    pub bcrypt_cost: u32,
    pub token_ttl_secs: u64,
}

/// How the serving layer establishes the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every call's bearer token is checked.
    Token,
    /// A gateway in front already authenticated the caller, so no check applies.
    Trust,
}

/// Listen addresses and client settings of the six services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesConfig {
    pub user: ServiceConfig,
    pub friend: ServiceConfig,
    pub message: ServiceConfig,
    pub chat: ServiceConfig,
    pub file: ServiceConfig,
    pub search: ServiceConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address the service listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How clients of this service spread calls over its instances.
    pub balancer: BalancerKind,
}

/// Load-balancing policy of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancerKind {
    /// Power of two choices over a peak-EWMA latency load.
    P2c,
    Random,
    RoundRobin,
    /// Consistent hashing on the `x-beehive-hash-key` metadata of each call.
    ConsistentHash,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// HTTP address of `/metrics` and `/healthz`; port 0 picks a free port.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Deadline of a call whose caller sends no `grpc-timeout`.
    pub default_deadline_ms: u64,
    /// Largest encoded gRPC message accepted or sent.
    pub max_message_bytes: u64,
    /// Calls in flight per server above which new calls get RESOURCE_EXHAUSTED.
    pub max_concurrent_calls: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `beehive_runtime=debug,info`.
    #[serde(deserialize_with = "lenient_string")]
    pub level: String,
    /// Calls slower than this are logged at WARN.
    pub slow_call_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable multi-line output.
    Pretty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector (`http://host:4317`); absent means no trace export.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    pub code_ttl_secs: u64,
    /// Minimum time between two codes sent to one address.
    pub resend_secs: u64,
    /// Wrong guesses after which a code is burnt.
    pub max_attempts: u32,
}

/// Per-client-address limits of the abuse-prone calls, in calls per second; 0 disables a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub verification_codes_per_sec: u32,
    pub logins_per_sec: u32,
    pub registrations_per_sec: u32,
    pub friend_requests_per_sec: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Consecutive wrong passwords after which an account is locked.
    pub max_failures: u32,
    pub lockout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    pub max_group_members: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// Newest messages kept in memory per conversation.
    pub hot_cache_size: usize,
    pub hot_cache_ttl_secs: u64,
    /// Longest `content` of a sent message, in characters (Unicode scalar values). It may not
    /// exceed [`MAX_CONTENT_CHARS_RULE`].
    pub max_content_chars: u32,
    /// Longest `extra_data` of a sent message, in bytes of JSON text.
    pub max_extra_data_bytes: u32,
}

/// The `max_chars` rule on `SendMessageRequest.content` in `proto/message/v1/message.proto`,
/// which the generated adapter enforces before `message.max_content_chars` is checked.
pub const MAX_CONTENT_CHARS_RULE: u32 = 10_000;
/// Largest `GetMessages` page; larger `limit`s are cut to it.
pub const MAX_MESSAGES_PAGE: u64 = 100;
/// Upper bound of the bytes one message of a `GetMessages` page takes besides its `content`
/// and `extra_data`: the other fields of `MessageInfo` with their tags (at most 10 bytes per
/// varint) and the length prefixes.
pub const MESSAGE_INFO_OVERHEAD_BYTES: u64 = 256;
/// Most bytes UTF-8 needs for one character.
const MAX_UTF8_BYTES_PER_CHAR: u64 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Largest file accepted by a single upload call.
    pub max_single_bytes: u64,
    /// Size of every multipart part except the last.
    pub part_bytes: u64,
    /// Largest file accepted by a multipart upload.
    pub max_upload_bytes: u64,
    /// Time after which an unfinished multipart upload is discarded.
    pub upload_expiry_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FriendConfig {
    pub request_expiry_days: u32,
    /// Time after a rejected or expired request before the same sender may ask again.
    pub retry_block_hours: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database: DatabaseConfig {
                url: None,
                max_connections: 16,
                min_connections: 1,
            },
            cache: CacheConfig {
                redis_url: None,
                default_ttl_secs: 7 * 24 * 3600,
                key_prefix: crate::cache::DEFAULT_KEY_PREFIX.to_owned(),
            },
            bus: BusConfig {
                amqp_url: None,
                max_retries: 5,
            },
            search: SearchConfig {
                elasticsearch_url: None,
                membership_cache_secs: 5,
            },
            discovery: DiscoveryConfig {
                etcd_endpoints: Vec::new(),
                static_addresses: SERVICE_NAMES
                    .iter()
                    .zip(FIRST_SERVICE_PORT..)
                    .map(|(name, port)| (name.to_string(), vec![format!("127.0.0.1:{port}")]))
                    .collect(),
            },
            mail: MailConfig {
                smtp_url: None,
                from: "Beehive <no-reply@beehive.local>".to_owned(),
            },
            auth: AuthConfig {
                jwt_secret: DEV_JWT_SECRET.to_owned(),
                mode: AuthMode::Token,
                bcrypt_cost: 12,
                token_ttl_secs: 7 * 24 * 3600,
            },
            services: ServicesConfig::default(),
            admin: AdminConfig {
                listen: loopback(DEFAULT_ADMIN_PORT),
            },
            server: ServerConfig {
                default_deadline_ms: 2000,
                max_message_bytes: 16 * MIB,
                max_concurrent_calls: 4096,
            },
            log: LogConfig {
                format: LogFormat::Json,
                level: "info".to_owned(),
                slow_call_ms: 500,
            },
            telemetry: TelemetryConfig {
                otlp_endpoint: None,
            },
            verification: VerificationConfig {
                code_ttl_secs: 300,
                resend_secs: 60,
                max_attempts: 5,
            },
            rate_limit: RateLimitConfig {
                verification_codes_per_sec: 500,
                logins_per_sec: 500,
                registrations_per_sec: 500,
                friend_requests_per_sec: 500,
            },
            login: LoginConfig {
                max_failures: 5,
                lockout_secs: 60,
            },
            chat: ChatConfig {
                max_group_members: 500,
            },
            message: MessageConfig {
                hot_cache_size: 100,
                hot_cache_ttl_secs: 600,
                max_content_chars: MAX_CONTENT_CHARS_RULE,
                max_extra_data_bytes: 64 * 1024,
            },
            file: FileConfig {
                max_single_bytes: 10 * MIB,
                part_bytes: 5 * MIB,
                max_upload_bytes: 10 * 1024 * MIB,
                upload_expiry_secs: 24 * 3600,
            },
            friend: FriendConfig {
                request_expiry_days: 7,
                retry_block_hours: 24,
            },
        }
    }
}

impl Default for ServicesConfig {
    fn default() -> Self {
        let service = |index: u16| ServiceConfig {
            listen: loopback(FIRST_SERVICE_PORT + index),
            balancer: BalancerKind::P2c,
        };
        Self {
            user: service(0),
            friend: service(1),
            message: service(2),
            chat: service(3),
            file: service(4),
            search: service(5),
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

impl Config {
    /// Loads defaults, then the YAML file at `path` (which must exist) or else the optional
    /// `etc/beehive.yaml`, then `BEEHIVE_` environment variables, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    reason: "no such file".to_owned(),
                });
            }
            Some(path) => Some(path.to_owned()),
            // The default file is optional: without it, defaults and the environment apply.
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|path| path.is_file()),
        };
        let mut figment = Self::defaults();
        if let Some(file) = &file {
            figment = figment.merge(Yaml::file_exact(file));
        }
        Self::extract(figment.merge(environment()))
    }

    /// Loads defaults overridden by YAML `text`, without the environment, and validates.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::extract(Self::defaults().merge(Yaml::string(text)))
    }

    fn defaults() -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(from_figment)?;
        config.validate()?;
        Ok(config)
    }

    /// The database URL: `database.url`, else a SQLite file in `data_dir` (created if missing).
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("beehive.db").display()
            ),
        }
    }

    /// Settings of service `name` (`user`, `friend`, …).
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        let services = &self.services;
        match name {
            "user" => Some(&services.user),
            "friend" => Some(&services.friend),
            "message" => Some(&services.message),
            "chat" => Some(&services.chat),
            "file" => Some(&services.file),
            "search" => Some(&services.search),
            _ => None,
        }
    }

    /// Mutable settings of service `name`, e.g. to set port 0 in tests.
    pub fn service_mut(&mut self, name: &str) -> Option<&mut ServiceConfig> {
        let services = &mut self.services;
        match name {
            "user" => Some(&mut services.user),
            "friend" => Some(&mut services.friend),
            "message" => Some(&mut services.message),
            "chat" => Some(&mut services.chat),
            "file" => Some(&mut services.file),
            "search" => Some(&mut services.search),
            _ => None,
        }
    }

    /// Whether tokens are signed with the public development secret.
    pub fn uses_dev_secret(&self) -> bool {
        self.auth.jwt_secret == DEV_JWT_SECRET
    }

    pub fn default_deadline(&self) -> Duration {
        Duration::from_millis(self.server.default_deadline_ms)
    }

    /// `server.max_message_bytes` as a tonic message limit.
    pub fn max_message_bytes(&self) -> usize {
        usize::try_from(self.server.max_message_bytes).unwrap_or(usize::MAX)
    }

    /// Checks every rule that types alone do not express; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_backends()?;
        self.validate_serving()?;
        self.validate_product()
    }

    fn validate_backends(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        if let Some(url) = &self.database.url {
            check_scheme(
                "database.url",
                url,
                &["sqlite", "postgres", "postgresql", "mysql", "mariadb"],
            )?;
        }
        positive("database.max_connections", self.database.max_connections)?;
        if self.database.min_connections > self.database.max_connections {
            return Err(ConfigError::invalid(
                "database.min_connections",
                format!(
                    "is {} but must not exceed database.max_connections ({})",
                    self.database.min_connections, self.database.max_connections
                ),
            ));
        }
        if let Some(url) = &self.cache.redis_url {
            check_scheme("cache.redis_url", url, &["redis", "rediss"])?;
        }
        positive("cache.default_ttl_secs", self.cache.default_ttl_secs)?;
        if let Some(url) = &self.bus.amqp_url {
            check_scheme("bus.amqp_url", url, &["amqp", "amqps"])?;
        }
        positive("bus.max_retries", self.bus.max_retries)?;
        if let Some(url) = &self.search.elasticsearch_url {
            check_scheme("search.elasticsearch_url", url, &["http", "https"])?;
        }
        for (index, endpoint) in self.discovery.etcd_endpoints.iter().enumerate() {
            let key = format!("discovery.etcd_endpoints[{index}]");
            let address = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"))
                .unwrap_or(endpoint);
            check_host_port(&key, address)?;
        }
        for (service, addresses) in &self.discovery.static_addresses {
            for (index, address) in addresses.iter().enumerate() {
                check_host_port(&format!("discovery.static.{service}[{index}]"), address)?;
            }
        }
        if let Some(url) = &self.mail.smtp_url {
            check_scheme("mail.smtp_url", url, &["smtp", "smtps"])?;
        }
        if !self.mail.from.contains('@') {
            return Err(ConfigError::invalid(
                "mail.from",
                format!("`{}` is not an email address", self.mail.from),
            ));
        }
        if let Some(url) = &self.telemetry.otlp_endpoint {
            check_scheme("telemetry.otlp_endpoint", url, &["http", "https"])?;
        }
        Ok(())
    }

    fn validate_serving(&self) -> Result<(), ConfigError> {
        if self.auth.jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::invalid(
                "auth.jwt_secret",
                format!(
                    "is {} bytes long but must be at least {MIN_JWT_SECRET_BYTES}",
                    self.auth.jwt_secret.len()
                ),
            ));
        }
        if !(4..=31).contains(&self.auth.bcrypt_cost) {
            return Err(ConfigError::invalid(
                "auth.bcrypt_cost",
                format!("is {} but must be from 4 to 31", self.auth.bcrypt_cost),
            ));
        }
        positive("auth.token_ttl_secs", self.auth.token_ttl_secs)?;

        let mut taken: BTreeMap<SocketAddr, String> = BTreeMap::new();
        let listeners = SERVICE_NAMES
            .iter()
            .filter_map(|name| {
                let service = self.service(name)?;
                Some((format!("services.{name}.listen"), service.listen))
            })
            .chain([("admin.listen".to_owned(), self.admin.listen)]);
        for (key, address) in listeners {
            if address.port() == 0 {
                continue;
            }
            if let Some(other) = taken.insert(address, key.clone()) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{address} is already used by {other}"),
                ));
            }
        }

        positive(
            "server.default_deadline_ms",
            self.server.default_deadline_ms,
        )?;
        positive(
            "server.max_concurrent_calls",
            self.server.max_concurrent_calls,
        )?;
        let largest_payload = self.file.part_bytes.max(self.file.max_single_bytes);
        let needed = largest_payload.saturating_add(MESSAGE_OVERHEAD_BYTES);
        if self.server.max_message_bytes < needed {
            return Err(ConfigError::invalid(
                "server.max_message_bytes",
                format!(
                    "is {} but must be at least {needed}: the largest file payload \
                     (file.part_bytes or file.max_single_bytes, {largest_payload}) plus \
                     {MESSAGE_OVERHEAD_BYTES} bytes of overhead",
                    self.server.max_message_bytes
                ),
            ));
        }

        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::invalid(
                "log.level",
                format!("`{}` is not a valid filter: {err}", self.log.level),
            ));
        }
        Ok(())
    }

    fn validate_product(&self) -> Result<(), ConfigError> {
        positive(
            "verification.code_ttl_secs",
            self.verification.code_ttl_secs,
        )?;
        positive("verification.max_attempts", self.verification.max_attempts)?;
        positive("login.max_failures", self.login.max_failures)?;
        if self.chat.max_group_members < 2 {
            return Err(ConfigError::invalid(
                "chat.max_group_members",
                format!("is {} but must be at least 2", self.chat.max_group_members),
            ));
        }
        positive(
            "message.hot_cache_ttl_secs",
            self.message.hot_cache_ttl_secs,
        )?;
        self.validate_message_sizes()?;
        positive("file.max_single_bytes", self.file.max_single_bytes)?;
        positive("file.part_bytes", self.file.part_bytes)?;
        if self.file.max_upload_bytes < self.file.part_bytes {
            return Err(ConfigError::invalid(
                "file.max_upload_bytes",
                format!(
                    "is {} but must be at least file.part_bytes ({})",
                    self.file.max_upload_bytes, self.file.part_bytes
                ),
            ));
        }
        positive("file.upload_expiry_secs", self.file.upload_expiry_secs)?;
        positive(
            "friend.request_expiry_days",
            self.friend.request_expiry_days,
        )?;
        Ok(())
    }
}

impl Config {
    /// Checks the message size limits, and that a full `GetMessages` page of messages at both
    /// limits fits in `server.max_message_bytes`.
    fn validate_message_sizes(&self) -> Result<(), ConfigError> {
        let message = &self.message;
        if !(1..=MAX_CONTENT_CHARS_RULE).contains(&message.max_content_chars) {
            return Err(ConfigError::invalid(
                "message.max_content_chars",
                format!(
                    "is {} but must be from 1 to {MAX_CONTENT_CHARS_RULE}, the limit of the \
                     message contract",
                    message.max_content_chars
                ),
            ));
        }
        let largest_message = u64::from(message.max_content_chars) * MAX_UTF8_BYTES_PER_CHAR
            + u64::from(message.max_extra_data_bytes)
            + MESSAGE_INFO_OVERHEAD_BYTES;
        let largest_page = largest_message * MAX_MESSAGES_PAGE;
        if largest_page > self.server.max_message_bytes {
            return Err(ConfigError::invalid(
                "message.max_extra_data_bytes",
                format!(
                    "is {} but a page of {MAX_MESSAGES_PAGE} messages at the limits \
                     (message.max_content_chars {} at up to {MAX_UTF8_BYTES_PER_CHAR} bytes each, \
                     message.max_extra_data_bytes, {MESSAGE_INFO_OVERHEAD_BYTES} bytes of \
                     overhead) takes {largest_page} bytes, more than server.max_message_bytes ({}); \
                     lower the message limits or raise server.max_message_bytes",
                    message.max_extra_data_bytes,
                    message.max_content_chars,
                    self.server.max_message_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// The `BEEHIVE_` environment provider, without the variables that are not configuration keys.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config" && !key.starts_with("test_")
        })
        .split(ENV_SEPARATOR)
}

/// Turns figment's error into one that names the key's full dotted path and the value's origin.
fn from_figment(err: figment::Error) -> ConfigError {
    use figment::error::Kind;

    let mut path = err.path.clone();
    let reason = match &err.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            if expected.is_empty() {
                "unknown key".to_owned()
            } else {
                format!("unknown key, expected one of: {}", expected.join(", "))
            }
        }
        Kind::MissingField(field) => {
            if path.last().map(String::as_str) != Some(field.as_ref()) {
                path.push(field.to_string());
            }
            "missing key".to_owned()
        }
        Kind::Message(message) if path.is_empty() => {
            let source = err
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.source.as_ref())
                .map(ToString::to_string)
                .unwrap_or_else(|| "configuration".to_owned());
            return ConfigError::File {
                path: PathBuf::from(source),
                reason: message.clone(),
            };
        }
        kind => kind.to_string(),
    };
    let key = path.join(".");
    let origin = match &err.metadata {
        Some(metadata) if metadata.name.contains("environment") => {
            let variable = env_variable_name(&path);
            format!(" (from environment variable {variable})")
        }
        Some(metadata) => match &metadata.source {
            Some(source) => format!(" (from {source})"),
            None => format!(" (from {})", metadata.name),
        },
        None => String::new(),
    };
    ConfigError::Invalid {
        key,
        origin,
        reason,
    }
}

/// The environment variable that sets the key at `path`, e.g. `BEEHIVE_AUTH__MODE`.
fn env_variable_name(path: &[String]) -> String {
    format!(
        "{ENV_PREFIX}{}",
        path.join(ENV_SEPARATOR).to_ascii_uppercase()
    )
}

fn positive<T: PartialOrd + Default + fmt::Display>(
    key: &str,
    value: T,
) -> Result<(), ConfigError> {
    if value > T::default() {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("is {value} but must be greater than 0"),
        ))
    }
}

fn check_scheme(key: &str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some(scheme) if schemes.contains(&scheme.to_ascii_lowercase().as_str()) => Ok(()),
        _ => Err(ConfigError::invalid(
            key,
            format!(
                "`{url}` must start with {}",
                schemes
                    .iter()
                    .map(|scheme| format!("{scheme}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
    }
}

fn check_host_port(key: &str, address: &str) -> Result<(), ConfigError> {
    let valid = match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0),
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("`{address}` is not a `host:port` address with a non-zero port"),
        ))
    }
}

/// Accepts a string, number or boolean as a string, so an all-digit secret needs no quotes.
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Signed(i64),
        Unsigned(u64),
        Float(f64),
        Flag(bool),
    }
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Text(text) => text,
        Scalar::Signed(value) => value.to_string(),
        Scalar::Unsigned(value) => value.to_string(),
        Scalar::Float(value) => value.to_string(),
        Scalar::Flag(value) => value.to_string(),
    })
}

/// Accepts a list of strings or one comma-separated string.
fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(text) => text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(list) => list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert_eq!(config.validate().ok(), Some(()));
        assert_eq!(config.services.search.listen, loopback(8006));
        assert_eq!(
            config.discovery.static_addresses["chat"],
            vec!["127.0.0.1:8004".to_owned()]
        );
        assert!(config.uses_dev_secret());
    }

    #[test]
    fn database_url_defaults_to_sqlite_in_data_dir() {
        let config = Config::default();
        assert_eq!(config.database_url(), "sqlite://./data/beehive.db?mode=rwc");
    }
}
