//! `DeleteMessageIndex` (service token only): removes a message from the index; removing one
//! that is not indexed succeeds.

use beehive_generated::pb::search::{CommonResponse, DeleteMessageIndexRequest};
use beehive_generated::search::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::{SearchService, search_error};

impl Handle<rpc::DeleteMessageIndex> for SearchService {
    async fn handle(
        &self,
        _ctx: CallContext,
        request: DeleteMessageIndexRequest,
    ) -> Result<CommonResponse, ServiceError> {
        self.engine
            .delete(&[request.message_id])
            .await
            .map_err(search_error)?;

        Ok(CommonResponse {
            success: true,
            message: format!("removed message {} from the index", request.message_id),
        })
    }
}
