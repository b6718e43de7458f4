//! Measures how fast the outbox relay moves events to RabbitMQ with publisher confirms.
//!
//! Run with `cargo run --release -p beehive-runtime --example outbox_relay_throughput`. It uses
//! `BEEHIVE_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`), a SQLite outbox
//! in a temporary directory, and a unique exchange with one durable queue bound to every topic,
//! so each confirm covers a persistent message written to a durable queue. Everything it
//! declares is deleted at the end.

use std::sync::Arc;
use std::time::Instant;

use beehive_runtime::bus::{Event, Outbox, OutboxRelay, RabbitBus, RabbitConfig, RelayConfig};
use lapin::options::{
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};

/// Events written to the outbox before the relay starts.
const EVENTS: usize = 20_000;
/// Events per write transaction.
const EVENTS_PER_TRANSACTION: usize = 500;
/// Relay batch sizes to compare.
const BATCH_SIZES: [u64; 3] = [64, 256, 1_000];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BEEHIVE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());

    for batch_size in BATCH_SIZES {
        let rate = measure(&url, batch_size).await?;
        println!(
            "relay batch {batch_size:>5}: {EVENTS} events in {:.2} s = {:.0} events/s",
            EVENTS as f64 / rate,
            rate
        );
    }
    Ok(())
}

/// Returns events per second for one relay batch size.
async fn measure(url: &str, batch_size: u64) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("outbox.db").display()
    );
    let db = Database::connect(&db_url).await?;
    let outbox = Outbox::new("message_outbox")?;
    db.execute(&outbox.create_table_statement()).await?;

    let payload = serde_json::json!({
        "message_id": 1, "conversation_id": 2, "sender_id": 3,
        "content": "a typical chat message of a few dozen characters", "created_at": 1_700_000_000
    });
    let events: Vec<Event> = (0..EVENTS)
        .map(|_| Event::new("message.push", payload.clone()))
        .collect();
    for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
        let txn = db.begin().await?;
        for event in chunk {
            outbox.insert(&txn, event).await?;
        }
        txn.commit().await?;
    }

    let mut config = RabbitConfig::new(url);
    config.exchange = format!("beehive.bench.{}", uuid::Uuid::new_v4().simple());
    let queue = format!("{}.all", config.exchange);
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;

    let bus = Arc::new(RabbitBus::new(config.clone())?);
    // The first publish declares the exchanges; bind the queue after it.
    bus_declare(&bus).await?;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            config.exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let relay = OutboxRelay::new(
        db.clone(),
        outbox.clone(),
        bus,
        RelayConfig {
            batch_size,
            ..RelayConfig::default()
        },
    );
    let started = Instant::now();
    let moved = relay.drain().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(moved == EVENTS, "relayed {moved} of {EVENTS} events");

    let queued = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    anyhow::ensure!(
        queued as usize == EVENTS,
        "the queue holds {queued} of {EVENTS} events"
    );

    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    for exchange in [config.exchange.clone(), format!("{}.dead", config.exchange)] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    connection.close(200, "done".into()).await?;
    Ok(EVENTS as f64 / elapsed.as_secs_f64())
}

/// Publishes nothing but forces the bus to connect and declare its exchanges.
async fn bus_declare(bus: &RabbitBus) -> anyhow::Result<()> {
    use beehive_runtime::bus::Bus;
    let probe = Event::new("bench.probe", serde_json::Value::Null);
    bus.publish(&[probe]).await?;
    Ok(())
}
