//! `UploadFile`: stores a file sent in one call, verifying its declared size and SHA-256, or
//! counts one more use of identical content that is already stored, writing no bytes.

use beehive_generated::entity::files;
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{UploadFileRequest, UploadFileResponse};
use beehive_runtime::storage::ContentHash;
use beehive_runtime::{CallContext, Handle, ServiceError};
use bytes::Bytes;
use sea_orm::Set;
use sha2::{Digest, Sha256};

use crate::{FileService, file_url, parse_hash, storage_error, storage_path};

impl Handle<rpc::UploadFile> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: UploadFileRequest,
    ) -> Result<UploadFileResponse, ServiceError> {
        ctx.require_acting_user("user_id", request.user_id)?;
        let declared = parse_hash("file_hash", &request.file_hash)?;
        let max_bytes = self.config.max_single_bytes;
        let actual_size = request.file_data.len() as u64;
        if actual_size > max_bytes {
            return Err(ServiceError::invalid(
                "file_data",
                format!(
                    "holds {actual_size} bytes; files over {max_bytes} bytes must use a multipart upload (InitMultipartUpload)"
                ),
            ));
        }
        if u64::try_from(request.file_size).unwrap_or(0) > max_bytes {
            return Err(ServiceError::invalid(
                "file_size",
                format!(
                    "declared {} bytes; files over {max_bytes} bytes must use a multipart upload (InitMultipartUpload)",
                    request.file_size
                ),
            ));
        }
        if u64::try_from(request.file_size).ok() != Some(actual_size) {
            return Err(ServiceError::invalid(
                "file_size",
                format!(
                    "declared {} bytes but file_data holds {actual_size}",
                    request.file_size
                ),
            ));
        }

        let data = Bytes::from(request.file_data);
        let actual = hash_bytes(data.clone()).await?;
        if actual != declared {
            return Err(ServiceError::invalid(
                "file_hash",
                format!("declared {declared} but the content hashes to {actual}"),
            ));
        }

        if let Some(existing) = self.find_by_hash(&declared).await? {
            self.register_duplicate(&existing, request.user_id, &request.file_name)
                .await?;
            return Ok(response(&existing, true));
        }

        let stored = self
            .store
            .put(Box::pin(futures::stream::once(async move { Ok(data) })))
            .await
            .map_err(storage_error)?;
        let row = files::ActiveModel {
            user_id: Set(request.user_id),
            file_hash: Set(stored.hash.to_string()),
            file_name: Set(request.file_name.clone()),
            file_size: Set(request.file_size),
            file_type: Set(request.file_type),
            storage_path: Set(storage_path(&stored.hash)),
            url: Set(file_url(&stored.hash)),
            usage_count: Set(1),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        };
        let (file, duplicate) = self
            .insert_or_reuse(row, &stored.hash, request.user_id, &request.file_name)
            .await?;
        Ok(response(&file, duplicate))
    }
}

/// Hashes `data` off the async threads, since a single upload may be several megabytes.
async fn hash_bytes(data: Bytes) -> Result<ContentHash, ServiceError> {
    tokio::task::spawn_blocking(move || ContentHash::from_digest(&Sha256::digest(&data)))
        .await
        .map_err(ServiceError::internal)
}

pub(crate) fn response(file: &files::Model, is_duplicate: bool) -> UploadFileResponse {
    UploadFileResponse {
        file_id: file.id,
        file_url: file.url.clone(),
        file_hash: file.file_hash.clone(),
        is_duplicate,
    }
}
