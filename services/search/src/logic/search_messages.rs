//! `SearchMessages` (`/search.SearchService/SearchMessages`): takes `search.SearchMessagesRequest`, returns `search.SearchMessagesResponse`.

use beehive_generated::search::rpc;
use beehive_runtime::{CallContext, Handle, ServiceError};

impl Handle<rpc::SearchMessages> for crate::SearchService {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: beehive_generated::pb::search::SearchMessagesRequest,
    ) -> Result<beehive_generated::pb::search::SearchMessagesResponse, ServiceError> {
        Err(ServiceError::Unimplemented("SearchMessages".to_owned()))
    }
}
