//! Friend request rows: the pending key, expiry, and the sweep that stores expiries.

use std::time::Duration;

use beehive_generated::entity::friend_requests as requests;
use beehive_runtime::ServiceError;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

pub(crate) const STATUS_PENDING: i16 = 0;
pub(crate) const STATUS_ACCEPTED: i16 = 1;
pub(crate) const STATUS_REJECTED: i16 = 2;
pub(crate) const STATUS_EXPIRED: i16 = 3;

/// Requests expired per sweep round at most; the next round takes the rest.
const SWEEP_BATCH: u64 = 500;

/// Value of the unique `pending_key` column while a request between `a` and `b` is pending: the
/// same for both directions, so concurrent requests either way make one pending row.
pub(crate) fn pending_key(a: i64, b: i64) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

/// Returns whether `row` is still stored as pending but is past its expiry at `now`.
pub(crate) fn is_stale(
    row: &requests::Model,
    now: DateTime<Utc>,
    expiry: chrono::Duration,
) -> bool {
    row.status == STATUS_PENDING && row.created_at + expiry <= now
}

/// Returns the status clients get: a stale pending request is expired before the sweep stores it.
pub(crate) fn visible_status(
    row: &requests::Model,
    now: DateTime<Utc>,
    expiry: chrono::Duration,
) -> i16 {
    if is_stale(row, now, expiry) {
        STATUS_EXPIRED
    } else {
        row.status
    }
}

/// When a request stopped being pending: `handled_at`, or for a stale pending one the moment it
/// expired.
pub(crate) fn closed_at(row: &requests::Model, expiry: chrono::Duration) -> Option<DateTime<Utc>> {
    if row.status == STATUS_PENDING {
        return Some(row.created_at + expiry);
    }
    row.handled_at
}

/// Stores a stale pending request as expired and frees its pending key. Does nothing when the
/// request was handled in the meantime.
pub(crate) async fn store_expired<C: ConnectionTrait>(
    db: &C,
    row: &requests::Model,
    expiry: chrono::Duration,
) -> Result<(), ServiceError> {
    requests::Entity::update_many()
        .col_expr(requests::Column::Status, Expr::value(STATUS_EXPIRED))
        .col_expr(
            requests::Column::PendingKey,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            requests::Column::HandledAt,
            Expr::value(row.created_at + expiry),
        )
        .filter(requests::Column::Id.eq(row.id))
        .filter(requests::Column::Status.eq(STATUS_PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks pending requests older than `expiry` expired every `interval` until `cancel` fires.
pub(crate) async fn sweep_expired(
    db: DatabaseConnection,
    expiry: chrono::Duration,
    interval: Duration,
    cancel: CancellationToken,
) {
    loop {
        match sweep_once(&db, expiry).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "marked old friend requests expired"),
            Err(err) => {
                tracing::warn!(error = %err, "sweeping expired friend requests failed; retrying later")
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Marks up to one batch of stale pending requests expired; returns how many.
pub(crate) async fn sweep_once(
    db: &DatabaseConnection,
    expiry: chrono::Duration,
) -> Result<usize, ServiceError> {
    use sea_orm::QuerySelect;

    let cutoff = Utc::now() - expiry;
    let stale = requests::Entity::find()
        .filter(requests::Column::Status.eq(STATUS_PENDING))
        .filter(requests::Column::CreatedAt.lte(cutoff))
        .limit(SWEEP_BATCH)
        .all(db)
        .await?;
    for row in &stale {
        store_expired(db, row, expiry).await?;
    }
    Ok(stale.len())
}
