//! `DeleteFile`: removes one of the caller's uploads of a file (`usage_count` − 1) and the stored
//! bytes once no upload is left; a user holding no reference gets PERMISSION_DENIED.

use beehive_generated::entity::{file_names, file_refs, files};
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{CommonResponse, DeleteFileRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use crate::{FileService, parse_hash, storage_error};

impl Handle<rpc::DeleteFile> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: DeleteFileRequest,
    ) -> Result<CommonResponse, ServiceError> {
        ctx.require_authenticated()?;
        let file_id = request.file_id;

        let txn = self.db.begin().await.map_err(ServiceError::internal)?;
        let remaining = match ctx.user_id() {
            Some(user_id) => {
                // The conditional update locks the reference row, so two concurrent deletes by
                // one user never both spend the same reference.
                let released = file_refs::Entity::update_many()
                    .col_expr(
                        file_refs::Column::RefCount,
                        Expr::col(file_refs::Column::RefCount).sub(1),
                    )
                    .filter(file_refs::Column::FileId.eq(file_id))
                    .filter(file_refs::Column::UserId.eq(user_id))
                    .filter(file_refs::Column::RefCount.gt(0))
                    .exec(&txn)
                    .await
                    .map_err(ServiceError::internal)?;
                if released.rows_affected == 0 {
                    txn.rollback().await.map_err(ServiceError::internal)?;
                    self.find_by_id(file_id).await?;
                    return Err(ServiceError::permission_denied(format!(
                        "user {user_id} has not uploaded file {file_id}"
                    )));
                }
                file_refs::Entity::delete_many()
                    .filter(file_refs::Column::FileId.eq(file_id))
                    .filter(file_refs::Column::RefCount.lte(0))
                    .exec(&txn)
                    .await
                    .map_err(ServiceError::internal)?;
                let still_uploaded = file_refs::Entity::find()
                    .filter(file_refs::Column::FileId.eq(file_id))
                    .filter(file_refs::Column::UserId.eq(user_id))
                    .one(&txn)
                    .await
                    .map_err(ServiceError::internal)?
                    .is_some();
                if !still_uploaded {
                    // The user's last upload is gone, and with it their access and their name.
                    file_names::Entity::delete_many()
                        .filter(file_names::Column::FileId.eq(file_id))
                        .filter(file_names::Column::UserId.eq(user_id))
                        .exec(&txn)
                        .await
                        .map_err(ServiceError::internal)?;
                }
                files::Entity::update_many()
                    .col_expr(
                        files::Column::UsageCount,
                        Expr::col(files::Column::UsageCount).sub(1),
                    )
                    .filter(files::Column::Id.eq(file_id))
                    .filter(files::Column::UsageCount.gt(0))
                    .exec(&txn)
                    .await
                    .map_err(ServiceError::internal)?;
                files::Entity::find_by_id(file_id)
                    .one(&txn)
                    .await
                    .map_err(ServiceError::internal)?
                    .map_or(0, |file| file.usage_count)
            }
            // Services remove the file outright, whoever uploaded it.
            None => {
                file_refs::Entity::delete_many()
                    .filter(file_refs::Column::FileId.eq(file_id))
                    .exec(&txn)
                    .await
                    .map_err(ServiceError::internal)?;
                0
            }
        };

        let file = files::Entity::find_by_id(file_id)
            .one(&txn)
            .await
            .map_err(ServiceError::internal)?
            .ok_or_else(|| ServiceError::not_found(format!("file {file_id}")))?;
        let removed = remaining <= 0;
        if removed {
            file_names::Entity::delete_many()
                .filter(file_names::Column::FileId.eq(file_id))
                .exec(&txn)
                .await
                .map_err(ServiceError::internal)?;
            files::Entity::delete_by_id(file_id)
                .exec(&txn)
                .await
                .map_err(ServiceError::internal)?;
        }
        txn.commit().await.map_err(ServiceError::internal)?;
        self.invalidate(&file).await;

        if !removed {
            return Ok(CommonResponse {
                success: true,
                message: format!("removed one upload of file {file_id}; {remaining} remain"),
            });
        }
        let hash = parse_hash("file_hash", &file.file_hash)?;
        // NOTE: an upload of the same content that starts between the commit above and this
        // check may still find its bytes removed; the window is one query long.
        if self.find_by_hash_uncached(&hash).await?.is_none() {
            self.store.delete(&hash).await.map_err(storage_error)?;
        }
        Ok(CommonResponse {
            success: true,
            message: format!("deleted file {file_id}"),
        })
    }
}
