//! `GetFileInfo`: returns a file's metadata to a caller who may read it (see
//! `FileService::authorize_read`); NOT_FOUND when the id is unknown.

use beehive_generated::file::rpc;
use beehive_generated::pb::file::{FileInfoResponse, GetFileInfoRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::FileService;

impl Handle<rpc::GetFileInfo> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: GetFileInfoRequest,
    ) -> Result<FileInfoResponse, ServiceError> {
        let (file, file_name) = self
            .authorize_read(&ctx, request.file_id, &request.file_hash)
            .await?;

        Ok(FileInfoResponse {
            file_id: file.id,
            file_name,
            file_size: file.file_size,
            file_type: file.file_type,
            file_url: file.url,
            file_hash: file.file_hash,
        })
    }
}
