//! SQL of the message service: the send transaction's steps, history pages and counters.

use std::collections::{BTreeMap, HashMap};

use beehive_generated::entity::{conversation_counters, message_outbox, messages, sender_counters};
use beehive_generated::pb::message::{ConversationStats, MessageInfo};
use beehive_runtime::bus::{
    Outbox, OutboxError, TOPIC_MESSAGE_INDEX, TOPIC_MESSAGE_PUSH, topic_column,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

/// Topics every stored message is published to, from one fan-out outbox row.
const MESSAGE_TOPICS: [&str; 2] = [TOPIC_MESSAGE_PUSH, TOPIC_MESSAGE_INDEX];

/// Namespace of the UUIDv5 outbox row ids derived from a message id.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d65_7373_6167_6500_8003_0000_0000_0001);

/// A failure inside the send transaction.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The sender already stored a message under this `client_msg_id`.
    #[error("the client message id is already stored")]
    DuplicateClientId,
}

impl StoreError {
    /// Reports whether the statement broke a unique key (a concurrent duplicate).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            Self::Db(err) => matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
            Self::Outbox(OutboxError::Database { source, .. }) => {
                matches!(source.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
            }
            Self::Outbox(_) => false,
            Self::DuplicateClientId => true,
        }
    }
}

impl From<StoreError> for beehive_runtime::ServiceError {
    fn from(err: StoreError) -> Self {
        Self::internal(err)
    }
}

/// A validated message to store.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub content_type: i16,
    pub content: String,
    pub extra_data: Option<serde_json::Value>,
    pub client_msg_id: Option<String>,
}

/// Writes one message inside the caller's transaction: bumps the conversation counter (whose
/// row lock serialises the conversation's senders), inserts the message with the new `seq`,
/// bumps the sender's counter and writes the `message.push` and `message.index` events.
pub(crate) async fn insert_message<C: ConnectionTrait>(
    conn: &C,
    outbox: &Outbox,
    message: &NewMessage,
    now: DateTime<Utc>,
) -> Result<messages::Model, StoreError> {
    let seq = next_seq(conn, message.conversation_id, now).await?;

    let row = messages::ActiveModel {
        id: ActiveValue::NotSet,
        conversation_id: ActiveValue::Set(message.conversation_id),
        sender_id: ActiveValue::Set(message.sender_id),
        seq: ActiveValue::Set(seq),
        content_type: ActiveValue::Set(message.content_type),
        content: ActiveValue::Set(message.content.clone()),
        extra_data: ActiveValue::Set(message.extra_data.clone()),
        status: ActiveValue::Set(0),
        client_msg_id: ActiveValue::Set(message.client_msg_id.clone()),
        created_at: ActiveValue::Set(now),
    }
    .insert(conn)
    .await?;

    bump_sent_count(conn, message.conversation_id, message.sender_id).await?;

    outbox
        .insert_fan_out(
            conn,
            event_id(row.id),
            &MESSAGE_TOPICS,
            &event_payload(&row),
        )
        .await?;
    Ok(row)
}

/// Adds one to the conversation's counter, creating it at 0 first, and returns the new value.
async fn next_seq<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    if let Some(seq) = increment_counter(conn, conversation_id, now).await? {
        return Ok(seq);
    }
    // First message: create the row; a concurrent first sender may win, which is fine.
    let create = Query::insert()
        .into_table(conversation_counters::Entity)
        .columns([
            conversation_counters::Column::ConversationId,
            conversation_counters::Column::LastSeq,
        ])
        .values_panic([conversation_id.into(), 0i64.into()])
        .on_conflict(
            OnConflict::column(conversation_counters::Column::ConversationId)
                .do_nothing_on([conversation_counters::Column::ConversationId])
                .to_owned(),
        )
        .to_owned();
    conn.execute(&create).await?;
    increment_counter(conn, conversation_id, now)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("conversation counter {conversation_id}")))
}

/// Increments an existing counter; `None` when the conversation has no counter yet.
async fn increment_counter<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>, DbErr> {
    let mut update = Query::update()
        .table(conversation_counters::Entity)
        .value(
            conversation_counters::Column::LastSeq,
            Expr::col(conversation_counters::Column::LastSeq).add(1),
        )
        .value(conversation_counters::Column::LastMessageAt, now)
        .and_where(Expr::col(conversation_counters::Column::ConversationId).eq(conversation_id))
        .to_owned();

    if conn.get_database_backend() != DbBackend::MySql {
        update.returning_col(conversation_counters::Column::LastSeq);
        let row = conn.query_one(&update).await?;
        return row
            .map(|row| row.try_get::<i64>("", "last_seq"))
            .transpose();
    }

    if conn.execute(&update).await?.rows_affected() == 0 {
        return Ok(None);
    }
    let counter = conversation_counters::Entity::find_by_id(conversation_id)
        .one(conn)
        .await?;
    Ok(counter.map(|counter| counter.last_seq))
}

/// Adds one to the sender's message count in the conversation. The conversation counter's row
/// lock is already held, so no other transaction creates the same row meanwhile.
async fn bump_sent_count<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
    user_id: i64,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(sender_counters::Entity)
        .value(
            sender_counters::Column::SentCount,
            Expr::col(sender_counters::Column::SentCount).add(1),
        )
        .and_where(Expr::col(sender_counters::Column::ConversationId).eq(conversation_id))
        .and_where(Expr::col(sender_counters::Column::UserId).eq(user_id))
        .to_owned();
    if conn.execute(&update).await?.rows_affected() > 0 {
        return Ok(());
    }
    sender_counters::ActiveModel {
        id: ActiveValue::NotSet,
        conversation_id: ActiveValue::Set(conversation_id),
        user_id: ActiveValue::Set(user_id),
        sent_count: ActiveValue::Set(1),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Id of the outbox row of message `message_id`. The relay derives each topic's event id from
/// it, so every publication of the message's events carries the same ids.
pub(crate) fn event_id(message_id: i64) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("message:{message_id}").as_bytes(),
    )
}

/// Payload of `message.push` and `message.index`: the message as `IndexMessage` and clients
/// read it, times in Unix seconds.
pub(crate) fn event_payload(row: &messages::Model) -> serde_json::Value {
    serde_json::json!({
        "message_id": row.id,
        "conversation_id": row.conversation_id,
        "sender_id": row.sender_id,
        "seq": row.seq,
        "content_type": row.content_type,
        "content": row.content,
        "extra_data": extra_data_text(row),
        "created_at": row.created_at.timestamp(),
    })
}

fn extra_data_text(row: &messages::Model) -> String {
    row.extra_data
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Converts a stored message to its wire form.
pub(crate) fn message_info(row: &messages::Model) -> MessageInfo {
    MessageInfo {
        message_id: row.id,
        conversation_id: row.conversation_id,
        sender_id: row.sender_id,
        content_type: i32::from(row.content_type),
        content: row.content.clone(),
        extra_data: extra_data_text(row),
        status: i32::from(row.status),
        created_at: row.created_at.timestamp(),
        seq: row.seq,
    }
}

/// Finds the message a sender stored under `client_msg_id`.
pub(crate) async fn find_by_client_id<C: ConnectionTrait>(
    conn: &C,
    sender_id: i64,
    client_msg_id: &str,
) -> Result<Option<messages::Model>, DbErr> {
    messages::Entity::find()
        .filter(messages::Column::SenderId.eq(sender_id))
        .filter(messages::Column::ClientMsgId.eq(client_msg_id))
        .one(conn)
        .await
}

/// Returns the conversation's newest `seq`, 0 when it has no message.
pub(crate) async fn last_seq<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
) -> Result<i64, DbErr> {
    let counter = conversation_counters::Entity::find_by_id(conversation_id)
        .one(conn)
        .await?;
    Ok(counter.map_or(0, |counter| counter.last_seq))
}

/// Returns up to `limit` messages with `seq < before_seq`, newest first.
pub(crate) async fn page<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
    before_seq: i64,
    limit: u64,
) -> Result<Vec<messages::Model>, DbErr> {
    messages::Entity::find()
        .filter(messages::Column::ConversationId.eq(conversation_id))
        .filter(messages::Column::Seq.lt(before_seq))
        .order_by_desc(messages::Column::Seq)
        .limit(limit)
        .all(conn)
        .await
}

/// Reads the counters of `conversation_ids` for `user_id` in one statement, so `last_seq` and
/// the user's sent count come from the same snapshot. Conversations without messages are
/// reported with zeros.
pub(crate) async fn stats<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    conversation_ids: &[i64],
) -> Result<Vec<ConversationStats>, DbErr> {
    let counters = Alias::new("c");
    let senders = Alias::new("s");
    let select = Query::select()
        .expr_as(
            Expr::col((
                counters.clone(),
                conversation_counters::Column::ConversationId,
            )),
            Alias::new("conversation_id"),
        )
        .expr_as(
            Expr::col((counters.clone(), conversation_counters::Column::LastSeq)),
            Alias::new("last_seq"),
        )
        .expr_as(
            Expr::col((
                counters.clone(),
                conversation_counters::Column::LastMessageAt,
            )),
            Alias::new("last_message_at"),
        )
        .expr_as(
            Expr::col((senders.clone(), sender_counters::Column::SentCount)),
            Alias::new("sent_count"),
        )
        .from_as(conversation_counters::Entity, counters.clone())
        .join_as(
            JoinType::LeftJoin,
            sender_counters::Entity,
            senders.clone(),
            Expr::col((senders.clone(), sender_counters::Column::ConversationId))
                .equals((
                    counters.clone(),
                    conversation_counters::Column::ConversationId,
                ))
                .and(Expr::col((senders.clone(), sender_counters::Column::UserId)).eq(user_id)),
        )
        .and_where(
            Expr::col((counters, conversation_counters::Column::ConversationId))
                .is_in(conversation_ids.iter().copied()),
        )
        .to_owned();
    let rows = conn.query_all(&select).await?;

    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let conversation_id: i64 = row.try_get("", "conversation_id")?;
        let last_message_at: Option<DateTime<Utc>> = row.try_get("", "last_message_at")?;
        let stats = ConversationStats {
            conversation_id,
            last_seq: row.try_get("", "last_seq")?,
            last_message_at: last_message_at.map_or(0, |at| at.timestamp()),
            sent_by_user: row.try_get::<Option<i64>>("", "sent_count")?.unwrap_or(0),
        };
        found.insert(conversation_id, stats);
    }
    Ok(conversation_ids
        .iter()
        .map(|&conversation_id| {
            found.remove(&conversation_id).unwrap_or(ConversationStats {
                conversation_id,
                ..ConversationStats::default()
            })
        })
        .collect())
}

/// Writes several messages with four statements, inside the caller's transaction: one upsert
/// of the conversation counters (locking them in conversation order), one multi-row insert of
/// the messages, one upsert of the sender counters and one insert of the outbox rows (one per
/// message, fanned out to both topics). Returns the stored messages in the order of `batch`.
/// Needs `RETURNING` (PostgreSQL, SQLite).
pub(crate) async fn insert_batch<C: ConnectionTrait>(
    conn: &C,
    batch: &[&NewMessage],
    now: DateTime<Utc>,
) -> Result<Vec<messages::Model>, DbErr> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut per_conversation: BTreeMap<i64, i64> = BTreeMap::new();
    let mut per_sender: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for message in batch {
        *per_conversation.entry(message.conversation_id).or_default() += 1;
        *per_sender
            .entry((message.conversation_id, message.sender_id))
            .or_default() += 1;
    }

    let last_seqs = bump_counters(conn, &per_conversation, now).await?;
    // Next seq to hand out per conversation, in batch order.
    let mut next: HashMap<i64, i64> = per_conversation
        .iter()
        .map(|(&conversation_id, &count)| {
            let last = last_seqs.get(&conversation_id).copied().unwrap_or(count);
            (conversation_id, last - count + 1)
        })
        .collect();
    let mut seqs = Vec::with_capacity(batch.len());
    for message in batch {
        let seq = next.entry(message.conversation_id).or_insert(1);
        seqs.push(*seq);
        *seq += 1;
    }

    let rows = batch
        .iter()
        .zip(&seqs)
        .map(|(message, &seq)| messages::ActiveModel {
            id: ActiveValue::NotSet,
            conversation_id: ActiveValue::Set(message.conversation_id),
            sender_id: ActiveValue::Set(message.sender_id),
            seq: ActiveValue::Set(seq),
            content_type: ActiveValue::Set(message.content_type),
            content: ActiveValue::Set(message.content.clone()),
            extra_data: ActiveValue::Set(message.extra_data.clone()),
            status: ActiveValue::Set(0),
            client_msg_id: ActiveValue::Set(message.client_msg_id.clone()),
            created_at: ActiveValue::Set(now),
        });
    let inserted = messages::Entity::insert_many(rows)
        .exec_with_returning(conn)
        .await?;
    // RETURNING gives no order guarantee: match rows by their unique (conversation, seq).
    let mut by_seq: HashMap<(i64, i64), messages::Model> = inserted
        .into_iter()
        .map(|row| ((row.conversation_id, row.seq), row))
        .collect();
    let mut stored = Vec::with_capacity(batch.len());
    for (message, &seq) in batch.iter().zip(&seqs) {
        let row = by_seq
            .remove(&(message.conversation_id, seq))
            .ok_or(DbErr::RecordNotInserted)?;
        stored.push(row);
    }

    bump_sent_counts(conn, &per_sender).await?;

    let topics = topic_column(&MESSAGE_TOPICS).map_err(|err| DbErr::Custom(err.to_string()))?;
    let events = stored.iter().map(|row| message_outbox::ActiveModel {
        id: ActiveValue::NotSet,
        event_id: ActiveValue::Set(event_id(row.id).to_string()),
        topic: ActiveValue::Set(topics.clone()),
        payload: ActiveValue::Set(event_payload(row).to_string()),
        created_at: ActiveValue::Set(now),
        attempts: ActiveValue::Set(0),
    });
    message_outbox::Entity::insert_many(events)
        .exec_without_returning(conn)
        .await?;
    Ok(stored)
}

/// Adds each count to its conversation counter (creating missing counters) and returns the
/// new `last_seq` per conversation.
async fn bump_counters<C: ConnectionTrait>(
    conn: &C,
    per_conversation: &BTreeMap<i64, i64>,
    now: DateTime<Utc>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let mut upsert = Query::insert()
        .into_table(conversation_counters::Entity)
        .columns([
            conversation_counters::Column::ConversationId,
            conversation_counters::Column::LastSeq,
            conversation_counters::Column::LastMessageAt,
        ])
        .on_conflict(
            OnConflict::column(conversation_counters::Column::ConversationId)
                .value(
                    conversation_counters::Column::LastSeq,
                    Expr::col((
                        conversation_counters::Entity,
                        conversation_counters::Column::LastSeq,
                    ))
                    .add(Expr::col((
                        Alias::new("excluded"),
                        conversation_counters::Column::LastSeq,
                    ))),
                )
                .update_column(conversation_counters::Column::LastMessageAt)
                .to_owned(),
        )
        .returning(Query::returning().columns([
            conversation_counters::Column::ConversationId,
            conversation_counters::Column::LastSeq,
        ]))
        .to_owned();
    for (&conversation_id, &count) in per_conversation {
        upsert.values_panic([conversation_id.into(), count.into(), now.into()]);
    }
    let rows = conn.query_all(&upsert).await?;
    let mut last_seqs = HashMap::with_capacity(rows.len());
    for row in rows {
        let conversation_id: i64 = row.try_get("", "conversation_id")?;
        let last_seq: i64 = row.try_get("", "last_seq")?;
        last_seqs.insert(conversation_id, last_seq);
    }
    if last_seqs.len() != per_conversation.len() {
        return Err(DbErr::RecordNotUpdated);
    }
    Ok(last_seqs)
}

/// Adds each count to its (conversation, sender) counter, creating missing counters.
async fn bump_sent_counts<C: ConnectionTrait>(
    conn: &C,
    per_sender: &BTreeMap<(i64, i64), i64>,
) -> Result<(), DbErr> {
    let mut upsert = Query::insert()
        .into_table(sender_counters::Entity)
        .columns([
            sender_counters::Column::ConversationId,
            sender_counters::Column::UserId,
            sender_counters::Column::SentCount,
        ])
        .on_conflict(
            OnConflict::columns([
                sender_counters::Column::ConversationId,
                sender_counters::Column::UserId,
            ])
            .value(
                sender_counters::Column::SentCount,
                Expr::col((sender_counters::Entity, sender_counters::Column::SentCount)).add(
                    Expr::col((Alias::new("excluded"), sender_counters::Column::SentCount)),
                ),
            )
            .to_owned(),
        )
        .to_owned();
    for (&(conversation_id, user_id), &count) in per_sender {
        upsert.values_panic([conversation_id.into(), user_id.into(), count.into()]);
    }
    conn.execute(&upsert).await?;
    Ok(())
}
