//! `CheckFileExists`: reports whether content with a hash is stored, and under which id and URL.

use beehive_generated::file::rpc;
use beehive_generated::pb::file::{CheckFileExistsRequest, CheckFileExistsResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::{FileService, parse_hash};

impl Handle<rpc::CheckFileExists> for FileService {
    async fn handle(
        &self,
        _ctx: CallContext,
        request: CheckFileExistsRequest,
    ) -> Result<CheckFileExistsResponse, ServiceError> {
        let hash = parse_hash("file_hash", &request.file_hash)?;

        let found = self.find_by_hash(&hash).await?;

        Ok(match found {
            Some(file) => CheckFileExistsResponse {
                exists: true,
                file_id: file.id,
                file_url: file.url,
            },
            None => CheckFileExistsResponse::default(),
        })
    }
}
