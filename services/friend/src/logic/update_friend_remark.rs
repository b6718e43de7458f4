//! `UpdateFriendRemark`: sets (or with an empty remark clears) the user's remark for a friend,
//! on the user's side of the friendship only.

use beehive_generated::entity::friends;
use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{CommonResponse, UpdateFriendRemarkRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

impl Handle<rpc::UpdateFriendRemark> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UpdateFriendRemarkRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let remark = Some(request.remark).filter(|remark| !remark.is_empty());

        let row = friends::Entity::find()
            .filter(friends::Column::UserId.eq(request.user_id))
            .filter(friends::Column::FriendId.eq(request.friend_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ServiceError::failed_precondition(format!(
                    "user {} is not your friend",
                    request.friend_id
                ))
            })?;

        // Only the caller's own row changes; the friend's remark for the caller stays.
        friends::Entity::update_many()
            .col_expr(friends::Column::Remark, Expr::value(remark))
            .filter(friends::Column::Id.eq(row.id))
            .exec(&self.db)
            .await?;

        self.lists.invalidate(&[request.user_id]).await;
        Ok(CommonResponse {
            success: true,
            message: "remark updated".to_owned(),
        })
    }
}
