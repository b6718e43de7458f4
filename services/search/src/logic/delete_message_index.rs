//! `DeleteMessageIndex` (`/search.SearchService/DeleteMessageIndex`): takes `search.DeleteMessageIndexRequest`, returns `search.CommonResponse`.

use beehive_generated::search::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::DeleteMessageIndex> for crate::SearchService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::search::DeleteMessageIndexRequest,
    ) -> Result<beehive_generated::pb::search::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("DeleteMessageIndex".to_owned()))
    }
}
