//! `SendFriendRequest`: asks another existing user for friendship; refused for oneself, for a
//! friend, while a request between the two is pending, and within the retry block after the
//! sender's last request to the same user was rejected or expired, unless a request between the
//! two closed later.

use beehive_generated::entity::{friend_requests as requests, friends};
use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{SendFriendRequestRequest, SendFriendRequestResponse};
use beehive_generated::pb::user::GetUserInfoRequest;
use beehive_runtime::client::outgoing;
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use crate::requests::{
    STATUS_EXPIRED, STATUS_PENDING, STATUS_REJECTED, closed_at, is_stale, pending_key,
    store_expired,
};

impl Handle<rpc::SendFriendRequest> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: SendFriendRequestRequest,
    ) -> Result<SendFriendRequestResponse, ServiceError> {
        ctx.require_acting_user("from_user_id", request.from_user_id)?;
        self.request_limiter.check(&ctx)?;
        let (from, to) = (request.from_user_id, request.to_user_id);
        if from == to {
            return Err(ServiceError::invalid(
                "to_user_id",
                "you cannot send a friend request to yourself",
            ));
        }

        self.require_user_exists(&ctx, to).await?;
        let already_friends = friends::Entity::find()
            .filter(friends::Column::UserId.eq(from))
            .filter(friends::Column::FriendId.eq(to))
            .one(&self.db)
            .await?
            .is_some();
        if already_friends {
            return Err(ServiceError::failed_precondition(format!(
                "user {to} is already your friend"
            )));
        }
        let now = Utc::now();
        let expiry = self.expiry();
        let pending = requests::Entity::find()
            .filter(requests::Column::Status.eq(STATUS_PENDING))
            .filter(requests::Column::PendingKey.eq(pending_key(from, to)))
            .all(&self.db)
            .await?;
        let mut stale = Vec::new();
        for row in pending {
            if is_stale(&row, now, expiry) {
                stale.push(row);
            } else if row.from_user_id == to {
                return Err(ServiceError::failed_precondition(format!(
                    "user {to} already sent you friend request {}; accept or reject it instead",
                    row.id
                )));
            } else {
                return Err(ServiceError::failed_precondition(format!(
                    "your friend request {} to user {to} is still pending",
                    row.id
                )));
            }
        }
        if let Some(until) = self.retry_blocked_until(from, to, &stale).await?
            && until > now
        {
            return Err(ServiceError::failed_precondition(format!(
                "your last friend request to user {to} was rejected or expired; you can ask again after {}",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }

        let txn = self.db.begin().await?;
        for row in &stale {
            store_expired(&txn, row, expiry).await?;
        }
        let row = requests::ActiveModel {
            from_user_id: Set(from),
            to_user_id: Set(to),
            message: Set(request.message),
            status: Set(STATUS_PENDING),
            pending_key: Set(Some(pending_key(from, to))),
            created_at: Set(now),
            handled_at: Set(None),
            ..Default::default()
        };
        let inserted = match row.insert(&txn).await {
            Ok(inserted) => inserted,
            Err(err) => {
                txn.rollback().await?;
                if let Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
                    return Err(ServiceError::failed_precondition(format!(
                        "a friend request between you and user {to} is already pending"
                    )));
                }
                return Err(err.into());
            }
        };
        txn.commit().await?;

        Ok(SendFriendRequestResponse {
            request_id: inserted.id,
        })
    }
}

impl crate::FriendService {
    /// Returns when `from` may ask `to` again, if the latest closed request between the two, in
    /// either direction, is a request from `from` to `to` that was rejected or expired.
    ///
    /// A later request, such as one from `to` that `from` accepted before deleting the
    /// friendship, lifts the block. `stale` holds the pending rows between the two that are past
    /// their expiry but not yet stored as expired.
    async fn retry_blocked_until(
        &self,
        from: i64,
        to: i64,
        stale: &[requests::Model],
    ) -> Result<Option<DateTime<Utc>>, ServiceError> {
        let expiry = self.expiry();
        let between = Condition::any()
            .add(
                Condition::all()
                    .add(requests::Column::FromUserId.eq(from))
                    .add(requests::Column::ToUserId.eq(to)),
            )
            .add(
                Condition::all()
                    .add(requests::Column::FromUserId.eq(to))
                    .add(requests::Column::ToUserId.eq(from)),
            );
        let last_closed = requests::Entity::find()
            .filter(between)
            .filter(requests::Column::Status.ne(STATUS_PENDING))
            .filter(requests::Column::HandledAt.is_not_null())
            .order_by_desc(requests::Column::HandledAt)
            .one(&self.db)
            .await?;
        let latest = last_closed
            .iter()
            .chain(stale)
            .filter_map(|row| closed_at(row, expiry).map(|at| (at, row)))
            .max_by_key(|(at, _)| *at);
        let Some((closed, row)) = latest else {
            return Ok(None);
        };
        // A stale row is still stored as pending, but it counts as expired.
        let refused = matches!(
            row.status,
            STATUS_REJECTED | STATUS_EXPIRED | STATUS_PENDING
        );
        if row.from_user_id == from && refused {
            Ok(Some(closed + self.retry_block()))
        } else {
            Ok(None)
        }
    }

    /// Checks through the user service that `user_id` exists.
    async fn require_user_exists(
        &self,
        ctx: &CallContext,
        user_id: i64,
    ) -> Result<(), ServiceError> {
        let lookup = GetUserInfoRequest { user_id };
        match self.users.get_user_info(outgoing(ctx, lookup)).await {
            Ok(_) => Ok(()),
            Err(err) if err.code() == tonic::Code::NotFound => {
                Err(ServiceError::not_found(format!("user {user_id}")))
            }
            Err(err) => Err(err),
        }
    }
}
