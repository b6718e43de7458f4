//! `UploadPart`: stores part `part_number` (1..total) of an upload, replacing an earlier copy,
//! and returns its etag: the part's SHA-256.

use beehive_generated::entity::{multipart_parts, multipart_uploads};
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{UploadPartRequest, UploadPartResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use bytes::Bytes;
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use crate::{FileService, expected_part_size, storage_error};

impl Handle<rpc::UploadPart> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UploadPartRequest,
    ) -> Result<UploadPartResponse, ServiceError> {
        let (upload_id, upload) = self.load_upload(&ctx, &request.upload_id).await?;
        if request.part_number > upload.total_parts {
            return Err(ServiceError::invalid(
                "part_number",
                format!("the upload has parts 1 to {}", upload.total_parts),
            ));
        }
        let number = u64::try_from(request.part_number).unwrap_or(0);
        let file_size = u64::try_from(upload.file_size).unwrap_or(0);
        let expected = expected_part_size(file_size, self.config.part_bytes, number);
        let actual = request.part_data.len() as u64;
        if actual != expected {
            return Err(ServiceError::invalid(
                "part_data",
                format!("part {number} must be {expected} bytes, got {actual}"),
            ));
        }

        let data = Bytes::from(request.part_data);
        let stored = self
            .store
            .put_part(
                &upload_id,
                number as u32,
                Box::pin(futures::stream::once(async move { Ok(data) })),
            )
            .await
            .map_err(storage_error)?;
        let etag = stored.hash.to_string();

        let now = Utc::now();
        let part = multipart_parts::ActiveModel {
            upload_id: Set(upload.upload_id.clone()),
            part_number: Set(request.part_number),
            size: Set(stored.size as i64),
            etag: Set(etag.clone()),
            updated_at: Set(now),
            ..Default::default()
        };
        let txn = self.db.begin().await.map_err(ServiceError::internal)?;
        multipart_parts::Entity::insert(part)
            .on_conflict(
                OnConflict::columns([
                    multipart_parts::Column::UploadId,
                    multipart_parts::Column::PartNumber,
                ])
                .update_columns([
                    multipart_parts::Column::Size,
                    multipart_parts::Column::Etag,
                    multipart_parts::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(ServiceError::internal)?;
        multipart_uploads::Entity::update_many()
            .col_expr(
                multipart_uploads::Column::ExpiresAt,
                sea_orm::sea_query::Expr::value(now + self.expiry()),
            )
            .filter(multipart_uploads::Column::Id.eq(upload.id))
            .exec(&txn)
            .await
            .map_err(ServiceError::internal)?;
        txn.commit().await.map_err(ServiceError::internal)?;

        Ok(UploadPartResponse {
            success: true,
            etag,
        })
    }
}
