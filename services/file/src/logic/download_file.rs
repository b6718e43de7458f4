//! `DownloadFile`: streams a file's content to a caller who may read it (see
//! `FileService::authorize_read`) in chunks of 1 MiB (the last may be shorter), each with its
//! byte offset.

use beehive_generated::file::rpc;
use beehive_generated::pb::file::{DownloadFileRequest, FileChunk};
use beehive_runtime::rpc::ServiceStream;
use beehive_runtime::storage::ByteStream;
use beehive_runtime::{CallContext, Handle, ServiceError};
use bytes::BytesMut;
use futures::StreamExt;

use crate::{FileService, parse_hash, storage_error};

/// Size of every chunk but the last, in bytes.
pub const CHUNK_BYTES: usize = 1024 * 1024;

impl Handle<rpc::DownloadFile> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: DownloadFileRequest,
    ) -> Result<ServiceStream<FileChunk>, ServiceError> {
        let (file, _) = self
            .authorize_read(&ctx, request.file_id, &request.file_hash)
            .await?;
        let hash = parse_hash("file_hash", &file.file_hash)?;

        let source = self.store.get(&hash).await.map_err(storage_error)?;

        Ok(Box::pin(rechunk(source, CHUNK_BYTES)))
    }
}

/// Regroups the store's chunks into chunks of exactly `size` bytes, except the last.
fn rechunk(
    source: ByteStream,
    size: usize,
) -> impl futures::Stream<Item = Result<FileChunk, ServiceError>> + Send + 'static {
    struct State {
        source: ByteStream,
        buffer: BytesMut,
        offset: i64,
        done: bool,
    }
    let state = State {
        source,
        buffer: BytesMut::with_capacity(size),
        offset: 0,
        done: false,
    };
    futures::stream::try_unfold(state, move |mut state| async move {
        while !state.done && state.buffer.len() < size {
            match state.source.next().await {
                Some(chunk) => state
                    .buffer
                    .extend_from_slice(&chunk.map_err(ServiceError::internal)?),
                None => state.done = true,
            }
        }
        if state.buffer.is_empty() {
            return Ok(None);
        }
        let take = state.buffer.len().min(size);
        let data = state.buffer.split_to(take).freeze();
        let chunk = FileChunk {
            data: data.to_vec(),
            offset: state.offset,
        };
        state.offset += take as i64;
        if state.buffer.capacity() < size {
            state.buffer.reserve(size);
        }
        Ok(Some((chunk, state)))
    })
}
