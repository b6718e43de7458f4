//! The generated adapter over a real gRPC connection: access rules and input rules refuse a
//! call before the logic runs, valid calls reach it, server streaming streams, and the typed
//! client returns typed errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use beehive_generated::pb::{file, search};
use beehive_generated::{MessageLimits, file as file_glue, search as search_glue};
use beehive_runtime::ServiceError;
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::context::{CallContext, Caller, DEFAULT_DEADLINE};
use beehive_runtime::error::FIELD_METADATA_KEY;
use beehive_runtime::rpc::{Handle, ServiceStream};

/// Search logic that counts the calls reaching it.
#[derive(Default)]
struct CountingSearch {
    calls: AtomicUsize,
}

impl Handle<search_glue::rpc::SearchMessages> for CountingSearch {
    async fn handle(
        &self,
        _ctx: CallContext,
        request: search::SearchMessagesRequest,
    ) -> Result<search::SearchMessagesResponse, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(search::SearchMessagesResponse {
            messages: Vec::new(),
            total: i64::from(request.page_size),
        })
    }
}

impl Handle<search_glue::rpc::IndexMessage> for CountingSearch {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: search::IndexMessageRequest,
    ) -> Result<search::CommonResponse, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(search::CommonResponse {
            success: true,
            message: String::new(),
        })
    }
}

impl Handle<search_glue::rpc::DeleteMessageIndex> for CountingSearch {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: search::DeleteMessageIndexRequest,
    ) -> Result<search::CommonResponse, ServiceError> {
        Err(ServiceError::not_found("message 9"))
    }
}

/// Serves `service` on a loopback port, putting `caller` into every call's context the way the
/// auth layer does.
async fn serve<S>(service: S, caller: Caller) -> SocketAddr
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("a local address");
    let with_caller = tonic::service::interceptor::InterceptedService::new(
        service,
        move |mut request: tonic::Request<()>| {
            request
                .extensions_mut()
                .insert(CallContext::internal(caller.clone(), DEFAULT_DEADLINE));
            Ok(request)
        },
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(with_caller)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn channel(addr: SocketAddr) -> ServiceChannel {
    ServiceChannel::lazy(&format!("http://{addr}")).expect("a valid URI")
}

fn status(outcome: Result<impl std::fmt::Debug, ServiceError>) -> tonic::Status {
    match outcome {
        Err(ServiceError::Downstream(status)) => status,
        other => panic!("expected a downstream status, got {other:?}"),
    }
}

fn search_request(keyword: &str) -> search::SearchMessagesRequest {
    search::SearchMessagesRequest {
        keyword: keyword.to_owned(),
        user_id: 1,
        conversation_id: 0,
        page: 1,
        page_size: 20,
    }
}

#[tokio::test]
async fn valid_call_reaches_the_logic() {
    let logic = Arc::new(CountingSearch::default());
    let addr = serve(
        search_glue::server(logic.clone(), MessageLimits::default()),
        Caller::User(1),
    )
    .await;
    let client = search_glue::SearchClient::new(channel(addr));

    let response = client
        .search_messages(tonic::Request::new(search_request("hello")))
        .await
        .expect("a valid search succeeds");
    assert_eq!(response.total, 20);
    assert_eq!(logic.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalid_input_is_refused_before_the_logic() {
    let logic = Arc::new(CountingSearch::default());
    let addr = serve(
        search_glue::server(logic.clone(), MessageLimits::default()),
        Caller::User(1),
    )
    .await;
    let client = search_glue::SearchClient::new(channel(addr));

    let status = status(
        client
            .search_messages(tonic::Request::new(search_request("")))
            .await,
    );
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("`keyword`"),
        "{}",
        status.message()
    );
    let field = status
        .metadata()
        .get(FIELD_METADATA_KEY)
        .and_then(|value| value.to_str().ok());
    assert_eq!(field, Some("keyword"));
    assert_eq!(logic.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn service_only_rpc_refuses_users_and_anonymous_callers() {
    let request = || {
        tonic::Request::new(search::IndexMessageRequest {
            message_id: 1,
            conversation_id: 2,
            sender_id: 3,
            content: "hello".to_owned(),
            created_at: 0,
        })
    };
    let logic = Arc::new(CountingSearch::default());

    let user_addr = serve(
        search_glue::server(logic.clone(), MessageLimits::default()),
        Caller::User(3),
    )
    .await;
    let user_client = search_glue::SearchClient::new(channel(user_addr));
    let refused = status(user_client.index_message(request()).await);
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let anonymous_addr = serve(
        search_glue::server(logic.clone(), MessageLimits::default()),
        Caller::Anonymous,
    )
    .await;
    let anonymous_client = search_glue::SearchClient::new(channel(anonymous_addr));
    let refused = status(anonymous_client.index_message(request()).await);
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert_eq!(logic.calls.load(Ordering::SeqCst), 0);

    let service_addr = serve(
        search_glue::server(logic.clone(), MessageLimits::default()),
        Caller::Service,
    )
    .await;
    let service_client = search_glue::SearchClient::new(channel(service_addr));
    let response = service_client
        .index_message(request())
        .await
        .expect("a service may index");
    assert!(response.success);
    assert_eq!(logic.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn typed_errors_keep_their_code() {
    let addr = serve(
        search_glue::server(
            Arc::new(CountingSearch::default()),
            MessageLimits::default(),
        ),
        Caller::Service,
    )
    .await;
    let client = search_glue::SearchClient::new(channel(addr));
    let status = status(
        client
            .delete_message_index(tonic::Request::new(search::DeleteMessageIndexRequest {
                message_id: 9,
            }))
            .await,
    );
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.message(), "message 9 not found");
}

#[test]
fn service_names_and_paths_are_exact() {
    use beehive_runtime::rpc::{Access, Rpc};

    assert_eq!(search_glue::SERVICE_NAME, "search.SearchService");
    assert_eq!(file_glue::SERVICE_NAME, "file.FileService");
    assert_eq!(
        <search_glue::rpc::IndexMessage as Rpc>::PATH,
        "/search.SearchService/IndexMessage"
    );
    assert_eq!(
        <search_glue::rpc::IndexMessage as Rpc>::ACCESS,
        Access::Service
    );
    assert_eq!(
        <beehive_generated::user::rpc::Register as Rpc>::ACCESS,
        Access::Public
    );
    assert_eq!(
        <file_glue::rpc::DownloadFile as Rpc>::METHOD,
        "DownloadFile"
    );
}

/// File logic whose only working RPC streams a fixed file in chunks.
struct StreamingFile;

const CONTENT: &[u8] = b"0123456789";
const CHUNK: usize = 4;

macro_rules! unimplemented_rpcs {
    ($($marker:ident: $request:ty => $response:ty;)*) => {
        $(
            impl Handle<file_glue::rpc::$marker> for StreamingFile {
                async fn handle(
                    &self,
                    _ctx: CallContext,
                    _request: $request,
                ) -> Result<$response, ServiceError> {
                    Err(ServiceError::Unimplemented(stringify!($marker).to_owned()))
                }
            }
        )*
    };
}

unimplemented_rpcs! {
    UploadFile: file::UploadFileRequest => file::UploadFileResponse;
    GetFileInfo: file::GetFileInfoRequest => file::FileInfoResponse;
    DeleteFile: file::DeleteFileRequest => file::CommonResponse;
    CheckFileExists: file::CheckFileExistsRequest => file::CheckFileExistsResponse;
    InitMultipartUpload: file::InitMultipartUploadRequest => file::InitMultipartUploadResponse;
    UploadPart: file::UploadPartRequest => file::UploadPartResponse;
    CompleteMultipartUpload: file::CompleteMultipartUploadRequest => file::UploadFileResponse;
    GetUploadStatus: file::GetUploadStatusRequest => file::UploadStatusResponse;
}

impl Handle<file_glue::rpc::DownloadFile> for StreamingFile {
    async fn handle(
        &self,
        _ctx: CallContext,
        _request: file::DownloadFileRequest,
    ) -> Result<ServiceStream<file::FileChunk>, ServiceError> {
        let chunks: Vec<Result<file::FileChunk, ServiceError>> = CONTENT
            .chunks(CHUNK)
            .enumerate()
            .map(|(index, data)| {
                Ok(file::FileChunk {
                    data: data.to_vec(),
                    offset: (index * CHUNK) as i64,
                })
            })
            .collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

#[tokio::test]
async fn server_streaming_delivers_every_chunk() {
    use futures::StreamExt;

    let addr = serve(
        file_glue::server(
            Arc::new(StreamingFile),
            MessageLimits::both(8 * 1024 * 1024),
        ),
        Caller::User(1),
    )
    .await;
    let client = file_glue::FileClient::new(channel(addr));
    let mut stream = client
        .download_file(tonic::Request::new(file::DownloadFileRequest {
            file_id: 5,
            ..Default::default()
        }))
        .await
        .expect("the download starts");
    let mut received = Vec::new();
    let mut offsets = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("each chunk arrives");
        offsets.push(chunk.offset);
        received.extend_from_slice(&chunk.data);
    }
    assert_eq!(received, CONTENT);
    assert_eq!(offsets, vec![0, 4, 8]);

    let refused = status(
        client
            .download_file(tonic::Request::new(file::DownloadFileRequest {
                file_id: 0,
                ..Default::default()
            }))
            .await,
    );
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("`file_id`"),
        "{}",
        refused.message()
    );
}

#[test]
fn descriptor_set_lists_every_service() {
    use prost::Message as _;

    let set = prost_types::FileDescriptorSet::decode(beehive_generated::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut services: Vec<String> = set
        .file
        .iter()
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |service| format!("{}.{}", file.package(), service.name()))
        })
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            "chat.ChatService",
            "file.FileService",
            "friend.FriendService",
            "message.MessageService",
            "search.SearchService",
            "user.UserService",
        ]
    );
    let imports_included = set
        .file
        .iter()
        .any(|file| file.name() == "google/protobuf/descriptor.proto");
    assert!(imports_included, "reflection needs the imported files too");
}
