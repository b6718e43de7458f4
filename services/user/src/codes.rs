//! Verification code rows: the newest code of an (email, purpose) pair, wrong-guess counting
//! and single use.

use beehive_generated::entity::email_verification_codes as codes;
use beehive_runtime::ServiceError;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// Message of every rejected code, whether wrong, expired, used, burnt or unknown, so a caller
/// learns nothing about which codes exist.
const INVALID_CODE: &str = "the verification code is wrong, expired or already used";

pub(crate) fn invalid_code() -> ServiceError {
    ServiceError::invalid("code", INVALID_CODE)
}

/// Checks `code` against the newest code sent to `email` for `purpose` without using it up.
///
/// A wrong guess on a live code adds one to its `attempts`; once `attempts` reaches
/// `max_attempts` the code is burnt. The conditional update keeps the count exact under
/// concurrent guesses. Returns the matching row.
pub(crate) async fn check<C: ConnectionTrait>(
    db: &C,
    email: &str,
    purpose: &str,
    code: &str,
    max_attempts: u32,
) -> Result<codes::Model, ServiceError> {
    let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    let newest = codes::Entity::find()
        .filter(codes::Column::Email.eq(email))
        .filter(codes::Column::Purpose.eq(purpose))
        .order_by_desc(codes::Column::CreatedAt)
        .order_by_desc(codes::Column::Id)
        .one(db)
        .await?;
    let Some(row) = newest else {
        return Err(invalid_code());
    };
    let live = !row.used && row.attempts < max_attempts && row.expired_at > Utc::now();
    if !live {
        return Err(invalid_code());
    }
    if row.code != code {
        codes::Entity::update_many()
            .col_expr(
                codes::Column::Attempts,
                Expr::col(codes::Column::Attempts).add(1),
            )
            .filter(codes::Column::Id.eq(row.id))
            .filter(codes::Column::Attempts.lt(max_attempts))
            .exec(db)
            .await?;
        return Err(invalid_code());
    }
    Ok(row)
}

/// Marks code row `id` used, if it still is live; returns false when another call used it,
/// burnt it or it expired in the meantime.
pub(crate) async fn consume<C: ConnectionTrait>(
    db: &C,
    id: i64,
    max_attempts: u32,
) -> Result<bool, ServiceError> {
    let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    let result = codes::Entity::update_many()
        .col_expr(codes::Column::Used, Expr::value(true))
        .filter(codes::Column::Id.eq(id))
        .filter(codes::Column::Used.eq(false))
        .filter(codes::Column::Attempts.lt(max_attempts))
        .filter(codes::Column::ExpiredAt.gt(Utc::now()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
