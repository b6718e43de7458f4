//! Database connections: SQLite (the embedded default), PostgreSQL or MySQL/MariaDB from one URL,
//! and running a generated migrator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

/// How long a SQLite connection waits for another writer before failing with "database is locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Maximum connections of a SQLite file pool, whatever `max_connections` is. SQLite runs one
/// writer at a time, and each connection keeps its own page cache and statement cache (about
/// 5 MB each under the send benchmark), so more connections cost memory and gain nothing.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Name used in cache keys for an in-memory SQLite database.
const MEMORY_DATABASE_NAME: &str = "memory";

/// Pool settings for [`connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// Log every statement through `tracing` (at debug level).
    pub log_statements: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            log_statements: false,
        }
    }
}

/// A failure to connect to or migrate a database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("failed to create the SQLite directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to connect to database `{name}`: {source}")]
    Connect {
        name: String,
        #[source]
        source: DbErr,
    },
    #[error("failed to migrate database `{name}`: {source}")]
    Migrate {
        name: String,
        #[source]
        source: DbErr,
    },
}

/// An open connection pool and the database's name.
#[derive(Debug, Clone)]
pub struct Database {
    pub connection: DatabaseConnection,
    /// The database name (or SQLite file stem), which qualifies cache keys.
    pub name: String,
}

impl Database {
    pub fn backend(&self) -> DbBackend {
        self.connection.get_database_backend()
    }

    /// Applies every pending migration of `M`.
    pub async fn migrate<M: MigratorTrait>(&self) -> Result<(), DbError> {
        M::up(&self.connection, None)
            .await
            .map_err(|source| DbError::Migrate {
                name: self.name.clone(),
                source,
            })
    }
}

/// The parts of a database URL that [`connect`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file; `None` is an in-memory database.
    Sqlite {
        path: Option<PathBuf>,
    },
    Postgres {
        name: String,
    },
    MySql {
        name: String,
    },
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`, `postgres://…/NAME` and
    /// `mysql://…/NAME` (also spelled `postgresql://` and `mariadb://`).
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let invalid = |reason: &str| DbError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| invalid("expected a scheme such as sqlite:, postgres:// or mysql://"))?;
        match scheme {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let path = path.split('?').next().unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return Ok(Self::Sqlite { path: None });
                }
                Ok(Self::Sqlite {
                    path: Some(PathBuf::from(path)),
                })
            }
            "postgres" | "postgresql" | "mysql" | "mariadb" => {
                let after_host = rest
                    .strip_prefix("//")
                    .and_then(|r| r.split_once('/'))
                    .map(|(_, path)| path)
                    .ok_or_else(|| invalid("expected a database name after the host, as in postgres://host/beehive"))?;
                let name = after_host.split('?').next().unwrap_or_default();
                if name.is_empty() {
                    return Err(invalid("the database name after the host is empty"));
                }
                let name = name.to_owned();
                if scheme.starts_with("postgres") {
                    Ok(Self::Postgres { name })
                } else {
                    Ok(Self::MySql { name })
                }
            }
            other => Err(invalid(&format!(
                "unsupported scheme `{other}`: use sqlite, postgres or mysql"
            ))),
        }
    }

    /// Returns the name that qualifies cache keys: the database name, or the SQLite file stem.
    pub fn name(&self) -> String {
        match self {
            Self::Sqlite { path: None } => MEMORY_DATABASE_NAME.to_owned(),
            Self::Sqlite { path: Some(path) } => path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| MEMORY_DATABASE_NAME.to_owned()),
            Self::Postgres { name } | Self::MySql { name } => name.clone(),
        }
    }
}

/// Connects to the database at `url`.
///
/// A SQLite file and its directory are created when missing; SQLite runs in WAL mode with a
/// busy timeout of [`SQLITE_BUSY_TIMEOUT`], so readers never block the writer.
pub async fn connect(url: &str, pool: &PoolOptions) -> Result<Database, DbError> {
    let parsed = DatabaseUrl::parse(url)?;
    let name = parsed.name();
    let mut options = ConnectOptions::new(url.replacen("mariadb:", "mysql:", 1));
    options
        .max_connections(pool.max_connections)
        .min_connections(pool.min_connections.min(pool.max_connections))
        .acquire_timeout(pool.acquire_timeout)
        .sqlx_logging(pool.log_statements);

    if let DatabaseUrl::Sqlite { path } = &parsed {
        if let Some(path) = path {
            create_parent_dir(path)?;
            let max = pool.max_connections.min(SQLITE_MAX_CONNECTIONS);
            options
                .max_connections(max)
                .min_connections(pool.min_connections.min(max));
        } else {
            // Each connection to `:memory:` opens a separate empty database: keep exactly one.
            options.max_connections(1).min_connections(1);
        }
        options.map_sqlx_sqlite_opts(|opts: SqliteConnectOptions| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
        });
    }

    let connection = sea_orm::Database::connect(options)
        .await
        .map_err(|source| DbError::Connect {
            name: name.clone(),
            source,
        })?;
    tracing::info!(database = %name, backend = ?connection.get_database_backend(), "connected to the database");
    Ok(Database { connection, name })
}

/// Creates database `name` on the server of `server_url` (PostgreSQL or MySQL) and returns the
/// URL of the new database. MySQL databases default to utf8mb4 with byte-wise comparison.
///
/// `name` must be lowercase ASCII letters, digits and `_`, because it is spliced into SQL.
pub async fn create_database(server_url: &str, name: &str) -> Result<String, DbError> {
    let (server, statement) = server_statement(server_url, name, "CREATE").await?;
    server
        .connection
        .execute_unprepared(&statement)
        .await
        .map_err(|source| DbError::Connect {
            name: name.to_owned(),
            source,
        })?;
    server.connection.close().await.ok();
    Ok(replace_database(server_url, name))
}

/// Drops database `name` on the server of `server_url`, if it exists.
pub async fn drop_database(server_url: &str, name: &str) -> Result<(), DbError> {
    let (server, statement) = server_statement(server_url, name, "DROP").await?;
    let result = server.connection.execute_unprepared(&statement).await;
    server.connection.close().await.ok();
    result.map(|_| ()).map_err(|source| DbError::Connect {
        name: name.to_owned(),
        source,
    })
}

async fn server_statement(
    server_url: &str,
    name: &str,
    verb: &str,
) -> Result<(Database, String), DbError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(DbError::InvalidUrl {
            url: redact(server_url),
            reason: format!("database name `{name}` must be lowercase letters, digits and `_`"),
        });
    }
    let statement = match (DatabaseUrl::parse(server_url)?, verb) {
        (DatabaseUrl::Postgres { .. }, "CREATE") => format!("CREATE DATABASE \"{name}\""),
        (DatabaseUrl::Postgres { .. }, _) => {
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
        }
        (DatabaseUrl::MySql { .. }, "CREATE") => {
            format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        }
        (DatabaseUrl::MySql { .. }, _) => format!("DROP DATABASE IF EXISTS `{name}`"),
        (DatabaseUrl::Sqlite { .. }, _) => {
            return Err(DbError::InvalidUrl {
                url: redact(server_url),
                reason: "SQLite has no server: use a new file instead".to_owned(),
            });
        }
    };
    let pool = PoolOptions {
        max_connections: 1,
        ..PoolOptions::default()
    };
    Ok((connect(server_url, &pool).await?, statement))
}

/// Returns `url` with its database name replaced by `name`, keeping any query string.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn create_parent_dir(path: &Path) -> Result<(), DbError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Replaces the password in a URL with `***`, so that errors never leak it.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_names_file_stem() {
        let url = DatabaseUrl::parse("sqlite://./data/beehive.db?mode=rwc").unwrap();
        assert_eq!(
            url,
            DatabaseUrl::Sqlite {
                path: Some(PathBuf::from("./data/beehive.db"))
            }
        );
        assert_eq!(url.name(), "beehive");
    }

    #[test]
    fn memory_sqlite_url() {
        let url = DatabaseUrl::parse("sqlite::memory:").unwrap();
        assert_eq!(url, DatabaseUrl::Sqlite { path: None });
        assert_eq!(url.name(), "memory");
    }

    #[test]
    fn server_urls_name_database() {
        let pg =
            DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").unwrap();
        assert_eq!(
            pg,
            DatabaseUrl::Postgres {
                name: "test".to_owned()
            }
        );
        let my = DatabaseUrl::parse("mariadb://root:pw@127.0.0.1:3306/beehive").unwrap();
        assert_eq!(
            my,
            DatabaseUrl::MySql {
                name: "beehive".to_owned()
            }
        );
    }

    #[test]
    fn replace_database_keeps_query() {
        assert_eq!(
            replace_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "t_1"
            ),
            "postgres://postgres@127.0.0.1:5432/t_1?sslmode=disable"
        );
        assert_eq!(
            replace_database("mysql://root@127.0.0.1:3306", "t_2"),
            "mysql://root@127.0.0.1:3306/t_2"
        );
    }

    #[test]
    fn invalid_urls_are_rejected_without_password() {
        let err = DatabaseUrl::parse("redis://user:secret@host/0").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unsupported scheme `redis`"), "{message}");
        assert!(!message.contains("secret"), "{message}");

        let err = DatabaseUrl::parse("postgres://user:secret@host").unwrap_err();
        assert!(err.to_string().contains("database name"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
