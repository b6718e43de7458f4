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

        let updated = friends::Entity::update_many()
            .col_expr(friends::Column::Remark, Expr::value(remark))
            .filter(friends::Column::UserId.eq(request.user_id))
            .filter(friends::Column::FriendId.eq(request.friend_id))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Err(ServiceError::failed_precondition(format!(
                "user {} is not your friend",
                request.friend_id
            )));
        }

        self.lists.invalidate(&[request.user_id]).await;
        Ok(CommonResponse {
            success: true,
            message: "remark updated".to_owned(),
        })
    }
}
