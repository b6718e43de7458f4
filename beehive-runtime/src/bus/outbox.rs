//! The transactional outbox: events written with the data that caused them, and the relay that
//! moves committed events to the bus.
//!
//! Table layout, shared with the generated migrations (`message_outbox`, `friend_outbox`):
//! `id` bigint auto-increment primary key, `event_id` string(64) unique, `topic` string(64),
//! `payload` text (JSON), `created_at` timestamp, `attempts` int (failed publish attempts).
//!
//! One row can carry one payload to several topics (a fan-out row). Its `topic` column then
//! lists them separated by single spaces. The relay publishes one event per topic, each with an
//! id derived from the row's `event_id` and the topic ([`fan_out_event_id`]). A message that
//! several consumers need thus costs one row to write and delete instead of one per topic.
//!
//! NOTE: a relay built before fan-out rows existed would publish such a row under the whole
//! list as one topic, which nothing consumes. Drain the outbox before rolling back past it.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, Order, Query, Table,
    TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Bus, BusError, Event, MAX_TOPIC_LEN};

/// Longest accepted table name.
const MAX_TABLE_NAME_LEN: usize = 63;
/// Separates the topics of a fan-out row in the `topic` column.
pub const TOPIC_SEPARATOR: char = ' ';

/// Maximum pause between relay attempts while publishing keeps failing.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(10);

const COL_ID: &str = "id";
const COL_EVENT_ID: &str = "event_id";
const COL_TOPIC: &str = "topic";
const COL_PAYLOAD: &str = "payload";
const COL_CREATED_AT: &str = "created_at";
const COL_ATTEMPTS: &str = "attempts";

/// An outbox failure.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("invalid outbox table name {0:?}: expected 1 to 63 lowercase letters, digits or '_'")]
    InvalidTable(String),
    #[error("invalid topic {0:?}: expected 1 to 64 bytes")]
    InvalidTopic(String),
    #[error("outbox query on table {table} failed")]
    Database {
        table: String,
        #[source]
        source: DbErr,
    },
    #[error("outbox row {row_id} of table {table} is corrupt: {reason}")]
    CorruptRow {
        table: String,
        row_id: i64,
        reason: String,
    },
    #[error("publishing outbox rows failed")]
    Publish(#[source] BusError),
}

/// One stored row, as the relay reads it: one event, or one per topic of a fan-out row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub events: Vec<Event>,
    pub attempts: i32,
}

/// Returns the `topic` column value of a row published to every topic in `topics`.
///
/// Each topic must be non-empty and free of [`TOPIC_SEPARATOR`], and the list must fit the
/// column's 64 bytes.
pub fn topic_column(topics: &[&str]) -> Result<String, OutboxError> {
    let joined = topics.join(&TOPIC_SEPARATOR.to_string());
    let valid = !topics.is_empty()
        && topics
            .iter()
            .all(|topic| !topic.is_empty() && !topic.contains(TOPIC_SEPARATOR))
        && joined.len() <= MAX_TOPIC_LEN;
    if !valid {
        return Err(OutboxError::InvalidTopic(joined));
    }
    Ok(joined)
}

/// Returns the id of the event that a fan-out row with id `row_event_id` publishes to `topic`.
/// It is stable, so a row published twice gives the same ids and consumers drop the copies.
pub fn fan_out_event_id(row_event_id: Uuid, topic: &str) -> Uuid {
    Uuid::new_v5(&row_event_id, topic.as_bytes())
}

/// Expands a stored row into its events: the row's own id for a single topic, a derived id per
/// topic for a fan-out row.
fn row_events(event_id: Uuid, topics: &str, payload: serde_json::Value) -> Vec<Event> {
    if !topics.contains(TOPIC_SEPARATOR) {
        return vec![Event {
            id: event_id,
            topic: topics.to_owned(),
            payload,
        }];
    }
    topics
        .split(TOPIC_SEPARATOR)
        .map(|topic| Event {
            id: fan_out_event_id(event_id, topic),
            topic: topic.to_owned(),
            payload: payload.clone(),
        })
        .collect()
}

/// An outbox table. Cloning shares the wake-up signal with the relay built from it.
#[derive(Debug, Clone)]
pub struct Outbox {
    table: String,
    wake: Arc<Notify>,
}

impl Outbox {
    /// Names the outbox table; the name is checked because it is spliced into SQL.
    pub fn new(table: &str) -> Result<Self, OutboxError> {
        let valid = !table.is_empty()
            && table.len() <= MAX_TABLE_NAME_LEN
            && table
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !table.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(OutboxError::InvalidTable(table.to_owned()));
        }
        Ok(Self {
            table: table.to_owned(),
            wake: Arc::new(Notify::new()),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Returns the `CREATE TABLE IF NOT EXISTS` statement for this table's layout. Deployments
    /// get the table from the generated migrations; tests and tools use this.
    pub fn create_table_statement(&self) -> TableCreateStatement {
        Table::create()
            .table(Alias::new(&self.table))
            .if_not_exists()
            .col(
                ColumnDef::new(Alias::new(COL_ID))
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(Alias::new(COL_EVENT_ID))
                    .string_len(64)
                    .not_null()
                    .unique_key(),
            )
            .col(
                ColumnDef::new(Alias::new(COL_TOPIC))
                    .string_len(64)
                    .not_null(),
            )
            .col(ColumnDef::new(Alias::new(COL_PAYLOAD)).text().not_null())
            .col(
                ColumnDef::new(Alias::new(COL_CREATED_AT))
                    .timestamp()
                    .not_null(),
            )
            .col(
                ColumnDef::new(Alias::new(COL_ATTEMPTS))
                    .integer()
                    .not_null()
                    .default(0),
            )
            .to_owned()
    }

    /// Returns an index on `created_at`, for operators watching the outbox's age.
    pub fn created_at_index_statement(&self) -> IndexCreateStatement {
        Index::create()
            .name(format!("idx_{}_created_at", self.table))
            .table(Alias::new(&self.table))
            .col(Alias::new(COL_CREATED_AT))
            .if_not_exists()
            .to_owned()
    }

    /// Inserts `event` through `conn`, normally the caller's open transaction, so the event
    /// commits or rolls back with the data that caused it. Call [`Outbox::wake_relay`] after
    /// the commit for low latency; the relay's polling finds the row anyway.
    pub async fn insert<C>(&self, conn: &C, event: &Event) -> Result<(), OutboxError>
    where
        C: ConnectionTrait,
    {
        let topic = topic_column(&[&event.topic])?;
        self.insert_row(conn, event.id, &topic, &event.payload)
            .await
    }

    /// Inserts one row that the relay publishes to every topic in `topics`, as with
    /// [`Outbox::insert`]. With a single topic the row is an ordinary event with id `id`; with
    /// several, each event's id is [`fan_out_event_id`]`(id, topic)`.
    pub async fn insert_fan_out<C>(
        &self,
        conn: &C,
        id: Uuid,
        topics: &[&str],
        payload: &serde_json::Value,
    ) -> Result<(), OutboxError>
    where
        C: ConnectionTrait,
    {
        let topics = topic_column(topics)?;
        self.insert_row(conn, id, &topics, payload).await
    }

    async fn insert_row<C>(
        &self,
        conn: &C,
        id: Uuid,
        topics: &str,
        payload: &serde_json::Value,
    ) -> Result<(), OutboxError>
    where
        C: ConnectionTrait,
    {
        let statement = Query::insert()
            .into_table(Alias::new(&self.table))
            .columns([
                Alias::new(COL_EVENT_ID),
                Alias::new(COL_TOPIC),
                Alias::new(COL_PAYLOAD),
                Alias::new(COL_CREATED_AT),
                Alias::new(COL_ATTEMPTS),
            ])
            .values_panic([
                id.to_string().into(),
                topics.to_owned().into(),
                payload.to_string().into(),
                chrono::Utc::now().naive_utc().into(),
                0i32.into(),
            ])
            .to_owned();
        conn.execute(&statement)
            .await
            .map_err(|source| self.database_error(source))?;
        tracing::debug!(table = %self.table, event_id = %id, topic = %topics, "event written to the outbox");
        Ok(())
    }

    /// Signals the relay that rows were committed.
    pub fn wake_relay(&self) {
        self.wake.notify_one();
    }

    /// Reads up to `limit` rows in id order.
    pub async fn fetch<C>(&self, conn: &C, limit: u64) -> Result<Vec<OutboxRow>, OutboxError>
    where
        C: ConnectionTrait,
    {
        let statement = Query::select()
            .columns([
                Alias::new(COL_ID),
                Alias::new(COL_EVENT_ID),
                Alias::new(COL_TOPIC),
                Alias::new(COL_PAYLOAD),
                Alias::new(COL_ATTEMPTS),
            ])
            .from(Alias::new(&self.table))
            .order_by(Alias::new(COL_ID), Order::Asc)
            .limit(limit)
            .to_owned();
        let rows = conn
            .query_all(&statement)
            .await
            .map_err(|source| self.database_error(source))?;

        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row
                .try_get("", COL_ID)
                .map_err(|source| self.database_error(source))?;
            let event_id: String = row
                .try_get("", COL_EVENT_ID)
                .map_err(|source| self.database_error(source))?;
            let topic: String = row
                .try_get("", COL_TOPIC)
                .map_err(|source| self.database_error(source))?;
            let payload: String = row
                .try_get("", COL_PAYLOAD)
                .map_err(|source| self.database_error(source))?;
            let attempts: i32 = row
                .try_get("", COL_ATTEMPTS)
                .map_err(|source| self.database_error(source))?;

            let event_id = Uuid::parse_str(&event_id).map_err(|err| self.corrupt(id, err))?;
            let payload = serde_json::from_str(&payload).map_err(|err| self.corrupt(id, err))?;
            events.push(OutboxRow {
                id,
                events: row_events(event_id, &topic, payload),
                attempts,
            });
        }
        Ok(events)
    }

    /// Deletes rows by id.
    pub async fn delete<C>(&self, conn: &C, ids: &[i64]) -> Result<u64, OutboxError>
    where
        C: ConnectionTrait,
    {
        if ids.is_empty() {
            return Ok(0);
        }
        let statement = Query::delete()
            .from_table(Alias::new(&self.table))
            .and_where(Expr::col(Alias::new(COL_ID)).is_in(ids.iter().copied()))
            .to_owned();
        let result = conn
            .execute(&statement)
            .await
            .map_err(|source| self.database_error(source))?;
        Ok(result.rows_affected())
    }

    /// Adds one to the `attempts` column of rows whose publishing failed.
    pub async fn record_failed_attempt<C>(&self, conn: &C, ids: &[i64]) -> Result<(), OutboxError>
    where
        C: ConnectionTrait,
    {
        if ids.is_empty() {
            return Ok(());
        }
        let statement = Query::update()
            .table(Alias::new(&self.table))
            .value(
                Alias::new(COL_ATTEMPTS),
                Expr::col(Alias::new(COL_ATTEMPTS)).add(1),
            )
            .and_where(Expr::col(Alias::new(COL_ID)).is_in(ids.iter().copied()))
            .to_owned();
        conn.execute(&statement)
            .await
            .map_err(|source| self.database_error(source))?;
        Ok(())
    }

    fn database_error(&self, source: DbErr) -> OutboxError {
        OutboxError::Database {
            table: self.table.clone(),
            source,
        }
    }

    fn corrupt(&self, row_id: i64, reason: impl std::fmt::Display) -> OutboxError {
        OutboxError::CorruptRow {
            table: self.table.clone(),
            row_id,
            reason: reason.to_string(),
        }
    }
}

/// Relay tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Rows read and published per round.
    pub batch_size: u64,
    /// Pause between polls when no wake-up arrives.
    pub poll_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Moves committed outbox rows to the bus: read a batch in id order, publish it, wait for the
/// confirms, delete it. A relay killed between the confirm and the delete publishes those rows
/// again when it restarts; consumers drop the duplicates.
///
/// NOTE: two relays on one table publish the same rows twice. Run one relay per table (one per
/// service deployment), or accept the duplicates, which consumers drop.
pub struct OutboxRelay {
    db: DatabaseConnection,
    outbox: Outbox,
    bus: Arc<dyn Bus>,
    config: RelayConfig,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("table", &self.outbox.table)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        bus: Arc<dyn Bus>,
        config: RelayConfig,
    ) -> Self {
        Self {
            db,
            outbox,
            bus,
            config,
        }
    }

    /// Publishes and deletes one batch; returns how many rows it moved (0 when the table is
    /// empty). On a publish failure the batch's `attempts` go up and the rows stay.
    pub async fn relay_batch(&self) -> Result<usize, OutboxError> {
        let rows = self.outbox.fetch(&self.db, self.config.batch_size).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let events: Vec<Event> = rows.into_iter().flat_map(|row| row.events).collect();

        if let Err(err) = self.bus.publish(&events).await {
            if let Err(record_err) = self.outbox.record_failed_attempt(&self.db, &ids).await {
                tracing::warn!(table = %self.outbox.table, error = %record_err, "recording a failed publish attempt failed");
            }
            return Err(OutboxError::Publish(err));
        }

        self.outbox.delete(&self.db, &ids).await?;
        tracing::debug!(table = %self.outbox.table, count = ids.len(), "relayed outbox rows");
        Ok(ids.len())
    }

    /// Drains the table until a batch comes back short.
    pub async fn drain(&self) -> Result<usize, OutboxError> {
        let mut total = 0;
        loop {
            let moved = self.relay_batch().await?;
            total += moved;
            if (moved as u64) < self.config.batch_size {
                return Ok(total);
            }
        }
    }

    /// Runs the relay in a task until the handle is stopped: it drains the table, then waits
    /// for a wake-up or the poll interval. Failures are logged and retried with a growing
    /// pause, capped at 10 s.
    pub fn spawn(self) -> RelayHandle {
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let pause = match self.drain().await {
                    Ok(_) => {
                        failures = 0;
                        self.config.poll_interval
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(
                            table = %self.outbox.table,
                            attempt = failures,
                            error = %err,
                            "outbox relay failed; retrying"
                        );
                        retry_backoff(self.config.poll_interval, failures)
                    }
                };
                tokio::select! {
                    () = token.cancelled() => break,
                    () = self.outbox.wake.notified(), if failures == 0 => {}
                    () = tokio::time::sleep(pause) => {}
                }
            }
            tracing::debug!(table = %self.outbox.table, "outbox relay stopped");
        });
        RelayHandle {
            cancel,
            task: Some(task),
        }
    }
}

fn retry_backoff(base: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(Ord::min(failures.saturating_sub(1), 16));
    base.saturating_mul(factor).min(MAX_RETRY_BACKOFF)
}

/// A running relay; dropping it stops the relay after its current step.
#[derive(Debug)]
pub struct RelayHandle {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// Stops the relay and waits for its task to end.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Ends the relay at once, wherever it is, as a crash would.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
