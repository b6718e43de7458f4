//! `GetFriendRequests`: the requests the user received, newest first, with their status (a
//! pending request older than the expiry is listed as expired, status 3).

use beehive_generated::entity::friend_requests as requests;
use beehive_generated::friend::rpc;
use beehive_generated::pb::friend::{
    FriendRequestInfo, FriendRequestsResponse, GetFriendRequestsRequest,
};
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Requests returned at most, newest first.
const MAX_REQUESTS: u64 = 500;

impl Handle<rpc::GetFriendRequests> for crate::FriendService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetFriendRequestsRequest,
    ) -> Result<FriendRequestsResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;

        let rows = requests::Entity::find()
            .filter(requests::Column::ToUserId.eq(request.user_id))
            .order_by_desc(requests::Column::CreatedAt)
            .order_by_desc(requests::Column::Id)
            .limit(MAX_REQUESTS)
            .all(&self.db)
            .await?;

        let now = Utc::now();
        let expiry = self.expiry();
        let requests = rows
            .iter()
            .map(|row| FriendRequestInfo {
                request_id: row.id,
                from_user_id: row.from_user_id,
                to_user_id: row.to_user_id,
                message: row.message.clone(),
                status: i32::from(crate::requests::visible_status(row, now, expiry)),
                created_at: row.created_at.timestamp(),
            })
            .collect();
        Ok(FriendRequestsResponse { requests })
    }
}
