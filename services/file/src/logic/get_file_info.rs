//! `GetFileInfo`: returns a file's metadata; NOT_FOUND when the id is unknown.

use beehive_generated::file::rpc;
use beehive_generated::pb::file::{FileInfoResponse, GetFileInfoRequest};
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::FileService;

impl Handle<rpc::GetFileInfo> for FileService {
    async fn handle(
        &self,
        _ctx: CallContext,
        request: GetFileInfoRequest,
    ) -> Result<FileInfoResponse, ServiceError> {
        let file = self.find_by_id(request.file_id).await?;

        Ok(FileInfoResponse {
            file_id: file.id,
            file_name: file.file_name,
            file_size: file.file_size,
            file_type: file.file_type,
            file_url: file.url,
            file_hash: file.file_hash,
        })
    }
}
