//! Per-user friend lists, cached whole (cache-aside) and dropped whenever they change.

use std::sync::Arc;

use beehive_generated::entity::friends;
use beehive_runtime::ServiceError;
use beehive_runtime::cache::{Cache, CacheAside};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

/// Name of the cached list in its keys: `cache:<database>:friend_lists:user_id:<id>`.
const LIST_TABLE: &str = "friend_lists";

pub(crate) struct FriendLists {
    db: DatabaseConnection,
    aside: CacheAside,
}

impl FriendLists {
    pub(crate) fn new(db: DatabaseConnection, db_name: String, cache: Arc<dyn Cache>) -> Self {
        Self {
            db,
            aside: CacheAside::new(cache, db_name),
        }
    }

    /// Cache key of `user_id`'s friend list.
    pub(crate) fn key(&self, user_id: i64) -> String {
        self.aside.key(LIST_TABLE, "user_id", &[&user_id])
    }

    /// Returns `user_id`'s friendship rows, oldest first, from the cache or the database.
    pub(crate) async fn get(&self, user_id: i64) -> Result<Vec<friends::Model>, ServiceError> {
        let db = self.db.clone();
        let json = self
            .aside
            .fetch(&self.key(user_id), || async move {
                let rows = friends::Entity::find()
                    .filter(friends::Column::UserId.eq(user_id))
                    .order_by_asc(friends::Column::CreatedAt)
                    .order_by_asc(friends::Column::Id)
                    .all(&db)
                    .await?;
                serde_json::to_string(&rows)
                    .map(Some)
                    .map_err(|err| DbErr::Json(err.to_string()))
            })
            .await
            .map_err(|err| ServiceError::internal(err.to_string()))?;
        let Some(json) = json else {
            return Ok(Vec::new());
        };
        match serde_json::from_str(&json) {
            Ok(rows) => Ok(rows),
            Err(err) => {
                tracing::warn!(user_id, error = %err, "cached friend list does not decode; reading the database");
                self.invalidate(&[user_id]).await;
                Ok(friends::Entity::find()
                    .filter(friends::Column::UserId.eq(user_id))
                    .order_by_asc(friends::Column::CreatedAt)
                    .order_by_asc(friends::Column::Id)
                    .all(&self.db)
                    .await?)
            }
        }
    }

    /// Drops the cached lists of `user_ids` after a committed change.
    pub(crate) async fn invalidate(&self, user_ids: &[i64]) {
        let keys = user_ids.iter().map(|id| self.key(*id)).collect();
        self.aside.invalidate(keys).await;
    }
}
