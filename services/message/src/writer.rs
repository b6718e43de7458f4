//! Runs the send transaction.
//!
//! PostgreSQL and MySQL get one transaction per send: concurrent sends to different
//! conversations proceed in parallel, and the counter's row lock orders one conversation's.
//!
//! SQLite allows a single writer at a time, and each commit costs a WAL write, so concurrent
//! sends are committed together (group commit): one task takes every queued send, up to
//! [`MAX_BATCH`], runs each inside its own savepoint of one transaction and commits once. A
//! send that fails (a duplicate `client_msg_id`) rolls back to its savepoint alone.

use beehive_generated::entity::messages;
use beehive_runtime::bus::Outbox;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::store::{self, NewMessage, StoreError};

/// Most sends committed by one SQLite transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// Sends waiting for the SQLite writer before new ones wait for room.
const QUEUE_CAPACITY: usize = 4096;

/// Result of one send: the stored message, or a unique-key conflict (a concurrent retry).
pub(crate) type SendResult = Result<messages::Model, StoreError>;

pub(crate) struct Job {
    message: NewMessage,
    reply: oneshot::Sender<SendResult>,
}

/// Runs send transactions, directly or through the SQLite batching task.
pub(crate) enum SendWriter {
    Direct {
        db: DatabaseConnection,
        outbox: Outbox,
    },
    Batched {
        jobs: mpsc::Sender<Job>,
    },
}

impl SendWriter {
    /// Chooses the mode from the database backend; on SQLite starts the batching task.
    pub(crate) fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Self::Direct { db, outbox };
        }
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run_batches(db, outbox, queue));
        Self::Batched { jobs }
    }

    /// Stores `message` and its events; returns once they are committed.
    pub(crate) async fn send(&self, message: NewMessage) -> SendResult {
        match self {
            Self::Direct { db, outbox } => {
                let txn = db.begin().await?;
                let row = store::insert_message(&txn, outbox, &message, Utc::now()).await?;
                txn.commit().await?;
                outbox.wake_relay();
                Ok(row)
            }
            Self::Batched { jobs } => {
                let (reply, answer) = oneshot::channel();
                jobs.send(Job { message, reply })
                    .await
                    .map_err(|_| writer_stopped())?;
                answer.await.map_err(|_| writer_stopped())?
            }
        }
    }
}

fn writer_stopped() -> StoreError {
    StoreError::Db(DbErr::Custom("the message writer task stopped".to_owned()))
}

/// Takes queued sends in batches and commits each batch once, until every sender is gone.
async fn run_batches(db: DatabaseConnection, outbox: Outbox, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        commit_batch(&db, &outbox, jobs).await;
    }
    tracing::debug!("message writer stopped");
}

/// Runs one transaction for `jobs` and answers each job once the commit is known.
async fn commit_batch(db: &DatabaseConnection, outbox: &Outbox, jobs: Vec<Job>) {
    let now = Utc::now();
    match write_batch(db, outbox, &jobs, now).await {
        Ok(results) => {
            outbox.wake_relay();
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(err) => {
            tracing::warn!(count = jobs.len(), error = %err, "message batch failed; retrying its sends one by one");
            for job in jobs {
                let result = write_one(db, outbox, &job.message, now).await;
                if result.is_ok() {
                    outbox.wake_relay();
                }
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Writes every job inside its own savepoint of one transaction and commits.
async fn write_batch(
    db: &DatabaseConnection,
    outbox: &Outbox,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Vec<SendResult>, DbErr> {
    let txn = db.begin().await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let savepoint = txn.begin().await?;
        match store::insert_message(&savepoint, outbox, &job.message, now).await {
            Ok(row) => {
                savepoint.commit().await?;
                results.push(Ok(row));
            }
            Err(err) => {
                savepoint.rollback().await?;
                results.push(Err(err));
            }
        }
    }
    txn.commit().await?;
    Ok(results)
}

async fn write_one(
    db: &DatabaseConnection,
    outbox: &Outbox,
    message: &NewMessage,
    now: DateTime<Utc>,
) -> SendResult {
    let txn = db.begin().await?;
    let row = store::insert_message(&txn, outbox, message, now).await?;
    txn.commit().await?;
    Ok(row)
}
