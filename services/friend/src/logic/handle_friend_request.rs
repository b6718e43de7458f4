//! `HandleFriendRequest`: the receiver accepts or rejects a pending request. Accepting writes
//! both friendship rows and a `friend.event` in one transaction and drops both friend lists
//! from the cache; an expired request is stored as expired and cannot be handled.

use beehive_generated::entity::{friend_requests as requests, friends};
use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{CommonResponse, HandleFriendRequestRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use crate::requests::{STATUS_ACCEPTED, STATUS_PENDING, STATUS_REJECTED, is_stale, store_expired};

impl Handle<rpc::HandleFriendRequest> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: HandleFriendRequestRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let row = requests::Entity::find_by_id(request.request_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found(format!("friend request {}", request.request_id))
            })?;
        if row.to_user_id != request.user_id {
            return Err(ServiceError::permission_denied(format!(
                "friend request {} was not sent to user {}",
                row.id, request.user_id
            )));
        }
        if row.status != STATUS_PENDING {
            return Err(ServiceError::failed_precondition(format!(
                "friend request {} was already handled",
                row.id
            )));
        }
        let now = Utc::now();
        if is_stale(&row, now, self.expiry()) {
            store_expired(&self.db, &row, self.expiry()).await?;
            return Err(ServiceError::failed_precondition(format!(
                "friend request {} expired after {} days",
                row.id, self.config.friend.request_expiry_days
            )));
        }

        let status = if request.accept {
            STATUS_ACCEPTED
        } else {
            STATUS_REJECTED
        };
        let txn = self.db.begin().await?;
        // The status condition makes a concurrent second handling update nothing.
        let claimed = requests::Entity::update_many()
            .col_expr(requests::Column::Status, Expr::value(status))
            .col_expr(
                requests::Column::PendingKey,
                Expr::value(Option::<String>::None),
            )
            .col_expr(requests::Column::HandledAt, Expr::value(now))
            .filter(requests::Column::Id.eq(row.id))
            .filter(requests::Column::Status.eq(STATUS_PENDING))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            txn.rollback().await?;
            return Err(ServiceError::failed_precondition(format!(
                "friend request {} was already handled",
                row.id
            )));
        }
        if request.accept {
            let pair = [
                (row.from_user_id, row.to_user_id),
                (row.to_user_id, row.from_user_id),
            ];
            let rows = pair.map(|(user_id, friend_id)| friends::ActiveModel {
                user_id: sea_orm::ActiveValue::Set(user_id),
                friend_id: sea_orm::ActiveValue::Set(friend_id),
                remark: sea_orm::ActiveValue::Set(None),
                created_at: sea_orm::ActiveValue::Set(now),
                ..Default::default()
            });
            // A row that already exists (a concurrent accept of the reverse request) is kept as it is.
            friends::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([friends::Column::UserId, friends::Column::FriendId])
                .exec(&txn)
                .await?;
            let event = crate::events::accepted(row.id, row.from_user_id, row.to_user_id);
            self.outbox
                .insert(&txn, &event)
                .await
                .map_err(ServiceError::internal)?;
        }
        txn.commit().await?;

        if request.accept {
            self.outbox.wake_relay();
            self.lists
                .invalidate(&[row.from_user_id, row.to_user_id])
                .await;
        }
        Ok(CommonResponse {
            success: true,
            message: if request.accept {
                "friend request accepted"
            } else {
                "friend request rejected"
            }
            .to_owned(),
        })
    }
}
