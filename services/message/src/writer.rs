//! Runs the send transaction, committing concurrent sends together (group commit).
//!
//! Writer tasks take every queued send, up to [`MAX_BATCH`], and store the batch with four
//! statements in one transaction ([`store::insert_batch`]), so a commit (and on SQLite the one
//! writer lock) is shared by many sends. A send whose `client_msg_id` is already stored gets that
//! message's id without a write. When a batch fails (for example a concurrent duplicate from
//! another process), it is rolled back and its sends run again one transaction each, so one
//! bad send never fails the others. MySQL lacks `RETURNING`, so there every send runs its own
//! transaction.

use std::collections::HashSet;
use std::sync::Arc;

use beehive_generated::entity::messages;
use beehive_runtime::bus::Outbox;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::{self, NewMessage, StoreError};

/// Most sends committed by one transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// Sends waiting for a writer before new ones wait for room.
const QUEUE_CAPACITY: usize = 4096;
/// Writer tasks on SQLite, which allows one writer at a time.
const SQLITE_WRITERS: usize = 1;
/// Writer tasks on PostgreSQL; batches of different writers overlap their round trips.
const SERVER_WRITERS: usize = 4;

/// Result of one send: the stored message, or a unique-key conflict (a concurrent retry).
pub(crate) type SendResult = Result<messages::Model, StoreError>;

pub(crate) struct Job {
    message: NewMessage,
    reply: oneshot::Sender<SendResult>,
}

type SharedQueue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Runs send transactions, directly or through the batching tasks.
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
    /// Chooses the mode from the database backend and starts the batching tasks.
    pub(crate) fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        let writers = match db.get_database_backend() {
            DbBackend::MySql => return Self::Direct { db, outbox },
            DbBackend::Sqlite => SQLITE_WRITERS,
            _ => SERVER_WRITERS,
        };
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let queue: SharedQueue = Arc::new(Mutex::new(queue));
        for _ in 0..writers {
            tokio::spawn(run_batches(db.clone(), outbox.clone(), queue.clone()));
        }
        Self::Batched { jobs }
    }

    /// Stores `message` and its events; returns once they are committed.
    pub(crate) async fn send(&self, message: NewMessage) -> SendResult {
        match self {
            Self::Direct { db, outbox } => {
                let result = write_one(db, outbox, &message, Utc::now()).await;
                if result.is_ok() {
                    outbox.wake_relay();
                }
                result
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
async fn run_batches(db: DatabaseConnection, outbox: Outbox, queue: SharedQueue) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = queue.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if received == 0 {
            break;
        }
        let jobs = std::mem::take(&mut batch);
        commit_batch(&db, &outbox, jobs).await;
    }
    tracing::debug!("message writer stopped");
}

/// Stores `jobs` in one transaction and replies to each job once the commit is known.
async fn commit_batch(db: &DatabaseConnection, outbox: &Outbox, jobs: Vec<Job>) {
    let now = Utc::now();
    let mut writes = Vec::with_capacity(jobs.len());
    let mut claimed = HashSet::new();
    for job in jobs {
        let duplicate = match &job.message.client_msg_id {
            Some(client_id) => {
                !claimed.insert((job.message.sender_id, client_id.clone()))
                    || matches!(
                        store::find_by_client_id(db, job.message.sender_id, client_id).await,
                        Ok(Some(_))
                    )
            }
            None => false,
        };
        if duplicate {
            let _ = job.reply.send(Err(StoreError::DuplicateClientId));
        } else {
            writes.push(job);
        }
    }
    if writes.is_empty() {
        return;
    }

    let messages: Vec<&NewMessage> = writes.iter().map(|job| &job.message).collect();
    match write_batch(db, &messages, now).await {
        Ok(rows) => {
            outbox.wake_relay();
            for (job, row) in writes.into_iter().zip(rows) {
                let _ = job.reply.send(Ok(row));
            }
        }
        Err(err) => {
            tracing::warn!(count = writes.len(), error = %err, "message batch failed; retrying its sends one by one");
            for job in writes {
                let result = write_one(db, outbox, &job.message, now).await;
                if result.is_ok() {
                    outbox.wake_relay();
                }
                let _ = job.reply.send(result);
            }
        }
    }
}

async fn write_batch(
    db: &DatabaseConnection,
    messages: &[&NewMessage],
    now: DateTime<Utc>,
) -> Result<Vec<messages::Model>, DbErr> {
    let txn = db.begin().await?;
    let rows = store::insert_batch(&txn, messages, now).await?;
    txn.commit().await?;
    Ok(rows)
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
