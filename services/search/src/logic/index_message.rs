//! `IndexMessage` (`/search.SearchService/IndexMessage`): takes `search.IndexMessageRequest`, returns `search.CommonResponse`.

use beehive_generated::search::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::IndexMessage> for crate::SearchService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::search::IndexMessageRequest,
    ) -> Result<beehive_generated::pb::search::CommonResponse, ServiceError> {
        Err(ServiceError::Unimplemented("IndexMessage".to_owned()))
    }
}
