//! `DeleteFriend`: ends a friendship for both sides (both rows, both cached lists); their
//! conversations and messages stay.

use beehive_generated::entity::friends;
use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{CommonResponse, DeleteFriendRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait};

impl Handle<rpc::DeleteFriend> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: DeleteFriendRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let (user, friend) = (request.user_id, request.friend_id);

        let txn = self.db.begin().await?;
        let both_directions = Condition::any()
            .add(
                Condition::all()
                    .add(friends::Column::UserId.eq(user))
                    .add(friends::Column::FriendId.eq(friend)),
            )
            .add(
                Condition::all()
                    .add(friends::Column::UserId.eq(friend))
                    .add(friends::Column::FriendId.eq(user)),
            );
        let deleted = friends::Entity::delete_many()
            .filter(both_directions)
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            txn.rollback().await?;
            return Err(ServiceError::failed_precondition(format!(
                "user {friend} is not your friend"
            )));
        }
        self.outbox
            .insert(&txn, &crate::events::deleted(user, friend))
            .await
            .map_err(ServiceError::internal)?;
        txn.commit().await?;

        self.outbox.wake_relay();
        self.lists.invalidate(&[user, friend]).await;
        Ok(CommonResponse {
            success: true,
            message: "friend deleted".to_owned(),
        })
    }
}
