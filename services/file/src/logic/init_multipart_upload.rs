//! `InitMultipartUpload`: starts an upload of a declared size, hash and part count, and returns
//! its id. Every part is `file.part_bytes` long except the last.

use beehive_generated::entity::multipart_uploads;
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{InitMultipartUploadRequest, InitMultipartUploadResponse};
use beehive_runtime::storage::{MAX_PART_NUMBER, UploadId};
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::{EntityTrait, Set};

use crate::{FileService, expected_parts, parse_hash};

impl Handle<rpc::InitMultipartUpload> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: InitMultipartUploadRequest,
    ) -> Result<InitMultipartUploadResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let hash = parse_hash("file_hash", &request.file_hash)?;
        let size = u64::try_from(request.file_size)
            .map_err(|_| ServiceError::invalid("file_size", "must not be negative"))?;
        let max_bytes = self.config.max_upload_bytes;
        if size > max_bytes {
            return Err(ServiceError::invalid(
                "file_size",
                format!("{size} bytes is over the maximum upload size of {max_bytes} bytes"),
            ));
        }
        let part_bytes = self.config.part_bytes;
        let parts = expected_parts(size, part_bytes);
        if u64::try_from(request.total_parts).ok() != Some(parts) {
            return Err(ServiceError::invalid(
                "total_parts",
                format!(
                    "a {size}-byte file has {parts} parts of {part_bytes} bytes (the last may be shorter), not {}",
                    request.total_parts
                ),
            ));
        }
        if parts > u64::from(MAX_PART_NUMBER) {
            return Err(ServiceError::invalid(
                "total_parts",
                format!("at most {MAX_PART_NUMBER} parts are supported"),
            ));
        }

        let upload_id = UploadId::generate();
        let now = Utc::now();
        let row = multipart_uploads::ActiveModel {
            upload_id: Set(upload_id.to_string()),
            user_id: Set(request.user_id),
            file_name: Set(request.file_name),
            file_size: Set(request.file_size),
            file_type: Set(request.file_type),
            file_hash: Set(hash.to_string()),
            total_parts: Set(request.total_parts),
            created_at: Set(now),
            expires_at: Set(now + self.expiry()),
            ..Default::default()
        };
        multipart_uploads::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(ServiceError::internal)?;

        Ok(InitMultipartUploadResponse {
            upload_id: upload_id.to_string(),
        })
    }
}
