//! `UploadPart`: stores part `part_number` (1..total) of an upload, replacing an earlier copy,
//! and returns its etag: the part's SHA-256.

use beehive_generated::entity::{multipart_parts, multipart_uploads};
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{UploadPartRequest, UploadPartResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use bytes::Bytes;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use crate::{FileService, expected_part_size, is_unique_violation, storage_error};

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
        let txn = self.db.begin().await.map_err(ServiceError::internal)?;
        record_part(
            &txn,
            &upload.upload_id,
            request.part_number,
            stored.size,
            &etag,
        )
        .await
        .map_err(ServiceError::internal)?;
        multipart_uploads::Entity::update_many()
            .col_expr(
                multipart_uploads::Column::ExpiresAt,
                Expr::value(now + self.expiry()),
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

/// Records a stored part, replacing the row of an earlier copy of the same part number.
///
/// An update, then an insert inside a savepoint, then the update again when a concurrent call
/// inserted first (see `add_reference` on why `INSERT … ON CONFLICT` is avoided).
async fn record_part(
    txn: &DatabaseTransaction,
    upload_id: &str,
    part_number: i32,
    size: u64,
    etag: &str,
) -> Result<(), DbErr> {
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let update = || {
        multipart_parts::Entity::update_many()
            .col_expr(multipart_parts::Column::Size, Expr::value(size))
            .col_expr(multipart_parts::Column::Etag, Expr::value(etag))
            .col_expr(multipart_parts::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(multipart_parts::Column::UploadId.eq(upload_id))
            .filter(multipart_parts::Column::PartNumber.eq(part_number))
    };
    if update().exec(txn).await?.rows_affected > 0 {
        return Ok(());
    }

    let part = multipart_parts::ActiveModel {
        upload_id: Set(upload_id.to_owned()),
        part_number: Set(part_number),
        size: Set(size),
        etag: Set(etag.to_owned()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let savepoint = txn.begin().await?;
    match multipart_parts::Entity::insert(part)
        .exec_without_returning(&savepoint)
        .await
    {
        Ok(_) => savepoint.commit().await,
        Err(err) if is_unique_violation(&err) => {
            savepoint.rollback().await?;
            update().exec(txn).await.map(|_| ())
        }
        Err(err) => Err(err),
    }
}
