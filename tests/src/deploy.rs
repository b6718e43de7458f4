//! Deployments for the end-to-end tests: `beehive up` in this process on free ports with a
//! temporary data folder, on embedded backends or on PostgreSQL + Redis + RabbitMQ.

use std::sync::Arc;

use anyhow::Context as _;
use beehive::cli::ServiceName;
use beehive::clients::Endpoints;
use beehive::stack::{DiscoveryMode, Stack, StackOptions};
use beehive_runtime::config::Config;
use beehive_runtime::testing::{AMQP_URL_VAR, POSTGRES_URL_VAR, REDIS_URL_VAR, backend_url};

/// bcrypt cost of test deployments: the minimum, so registrations take milliseconds. The
/// cost does not change what the tests check.
pub const TEST_BCRYPT_COST: u32 = 4;

/// A running in-process deployment; [`Deployment::stop`] shuts it down and drops its database.
pub struct Deployment {
    pub stack: Stack,
    pub endpoints: Endpoints,
    /// Unique per deployment; tests put it into usernames and emails.
    pub tag: String,
    data_dir: tempfile::TempDir,
    database: Option<(String, String)>,
}

impl Deployment {
    /// All six services on embedded backends.
    pub async fn embedded() -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let config = test_config(data_dir.path());
        Self::start(config, data_dir, None, None).await
    }

    /// All six services on PostgreSQL, Redis and RabbitMQ, each isolated for this deployment: a
    /// new database, keys qualified by that database's name, a new exchange. `None` (after a
    /// line saying so) when a backend variable is unset outside CI.
    pub async fn real_backends() -> anyhow::Result<Option<Self>> {
        let (Some(postgres), Some(redis), Some(amqp)) = (
            backend_url(POSTGRES_URL_VAR),
            backend_url(REDIS_URL_VAR),
            backend_url(AMQP_URL_VAR),
        ) else {
            return Ok(None);
        };
        let tag = new_tag();
        let name = format!("beehive_e2e_{tag}");
        let url = beehive_runtime::db::create_database(&postgres, &name)
            .await
            .context("failed to create the test database")?;

        let data_dir = tempfile::tempdir()?;
        let mut config = test_config(data_dir.path());
        config.database.url = Some(url);
        config.cache.redis_url = Some(redis);
        config.bus.amqp_url = Some(amqp);
        let exchange = format!("beehive.e2e.{tag}");
        Self::start(config, data_dir, Some((postgres, name)), Some(exchange))
            .await
            .map(Some)
    }

    async fn start(
        config: Config,
        data_dir: tempfile::TempDir,
        database: Option<(String, String)>,
        bus_exchange: Option<String>,
    ) -> anyhow::Result<Self> {
        let options = StackOptions {
            services: ServiceName::ALL.to_vec(),
            discovery: DiscoveryMode::InProcess,
            admin: false,
            bus_exchange,
        };
        let stack = Stack::start(Arc::new(config), options).await?;
        let addresses = stack
            .addresses()
            .context("the deployment lacks a service")?;
        Ok(Self {
            stack,
            endpoints: Endpoints::from_addresses(addresses),
            tag: new_tag(),
            data_dir,
            database,
        })
    }

    pub fn outbox(&self) -> std::path::PathBuf {
        self.stack.outbox_dir()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Shuts the services down and drops the test database.
    pub async fn stop(self) {
        self.stack.shutdown().await;
        if let Some((server, name)) = self.database
            && let Err(err) = beehive_runtime::db::drop_database(&server, &name).await
        {
            eprintln!("failed to drop test database {name}: {err}");
        }
    }
}

/// Defaults with free ports, no admin server, `data_dir` and the test bcrypt cost.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    config.auth.bcrypt_cost = TEST_BCRYPT_COST;
    for service in ServiceName::ALL {
        if let Some(settings) = config.service_mut(service.as_str()) {
            settings.listen.set_port(0);
        }
    }
    config.admin.listen.set_port(0);
    config
}

/// Eight random hex digits.
pub fn new_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
