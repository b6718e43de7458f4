//! `GetUsersByIds`: profiles of up to 100 users in request order; unknown ids are left out and
//! a repeated id appears once.

use std::collections::HashSet;

use beehive_generated::pb::user::{GetUsersByIdsRequest, UsersResponse};
use beehive_generated::user::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};
use futures::future::try_join_all;

impl Handle<rpc::GetUsersByIds> for crate::UserService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetUsersByIdsRequest,
    ) -> Result<UsersResponse, ServiceError> {
        self.require_token_user(&ctx).await?;
        let mut seen = HashSet::new();
        let ids: Vec<i64> = request
            .user_ids
            .into_iter()
            .filter(|id| seen.insert(*id))
            .collect();

        let lookups = ids.iter().map(|id| async move {
            let Some(user) = self.store.user_by_id(*id).await? else {
                return Ok::<_, ServiceError>(None);
            };
            let online = self.store.is_online(user.id).await?;
            Ok(Some((user, online)))
        });
        let found = try_join_all(lookups).await?;

        let users = found
            .into_iter()
            .flatten()
            .map(|(user, online)| crate::user_info(&ctx, &user, online))
            .collect();
        Ok(UsersResponse { users })
    }
}
