//! `GetUploadStatus`: lists the parts of a multipart upload stored so far, so a client can resume.

use beehive_generated::entity::multipart_parts;
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{GetUploadStatusRequest, PartInfo, UploadStatusResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::FileService;

impl Handle<rpc::GetUploadStatus> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetUploadStatusRequest,
    ) -> Result<UploadStatusResponse, ServiceError> {
        let (_, upload) = self.load_upload(&ctx, &request.upload_id).await?;

        let parts = multipart_parts::Entity::find()
            .filter(multipart_parts::Column::UploadId.eq(&upload.upload_id))
            .order_by_asc(multipart_parts::Column::PartNumber)
            .all(&self.db)
            .await
            .map_err(ServiceError::internal)?;

        Ok(UploadStatusResponse {
            upload_id: upload.upload_id,
            total_parts: upload.total_parts,
            file_size: upload.file_size,
            parts: parts
                .into_iter()
                .map(|part| PartInfo {
                    part_number: part.part_number,
                    etag: part.etag,
                })
                .collect(),
            expires_at: upload.expires_at.timestamp(),
            file_hash: upload.file_hash,
        })
    }
}
