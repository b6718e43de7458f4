//! gRPC clients of a deployment's six services, over a few shared HTTP/2 connections each,
//! for the commands that drive a deployment from outside (`replay`, `bench`).

use std::net::SocketAddr;

use anyhow::Context as _;
use beehive_generated::pb::chat::chat_service_client::ChatServiceClient;
use beehive_generated::pb::file::file_service_client::FileServiceClient;
use beehive_generated::pb::friend::friend_service_client::FriendServiceClient;
use beehive_generated::pb::message::message_service_client::MessageServiceClient;
use beehive_generated::pb::search::search_service_client::SearchServiceClient;
use beehive_generated::pb::user::user_service_client::UserServiceClient;
use beehive_runtime::config::Config;
use tonic::transport::{Channel, Endpoint};

use crate::cli::ServiceName;

/// Largest message the clients send or accept: a 5 MiB file part plus framing fits.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Base URI (`http://host:port`) of each service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    uris: [String; 6],
}

impl Endpoints {
    /// The services at `host` on the ports of `services.<svc>.listen`. `host` may carry an
    /// `http://` scheme.
    pub fn on_host(host: &str, config: &Config) -> Self {
        let host = host
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Self {
            uris: ServiceName::ALL.map(|service| {
                let port = config
                    .service(service.as_str())
                    .map_or(0, |settings| settings.listen.port());
                format!("http://{host}:{port}")
            }),
        }
    }

    /// The services at the given addresses, in [`ServiceName::ALL`] order.
    pub fn from_addresses(addresses: [SocketAddr; 6]) -> Self {
        Self {
            uris: addresses.map(|address| format!("http://{address}")),
        }
    }

    pub fn uri(&self, service: ServiceName) -> &str {
        &self.uris[service.index()]
    }
}

/// Clients of every service; `connections` channels per service, picked by worker number.
#[derive(Clone)]
pub struct Clients {
    user: Vec<UserServiceClient<Channel>>,
    friend: Vec<FriendServiceClient<Channel>>,
    message: Vec<MessageServiceClient<Channel>>,
    chat: Vec<ChatServiceClient<Channel>>,
    file: Vec<FileServiceClient<Channel>>,
    search: Vec<SearchServiceClient<Channel>>,
}

impl Clients {
    /// Connects to every service; fails naming the first one that does not answer.
    pub async fn connect(endpoints: &Endpoints, connections: usize) -> anyhow::Result<Self> {
        let connections = connections.max(1);
        let channels = |service: ServiceName| {
            let uri = endpoints.uri(service).to_owned();
            async move { connect_channels(&uri, connections).await }
        };
        Ok(Self {
            user: channels(ServiceName::User)
                .await?
                .into_iter()
                .map(|channel| {
                    UserServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                })
                .collect(),
            friend: channels(ServiceName::Friend)
                .await?
                .into_iter()
                .map(|channel| {
                    FriendServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                })
                .collect(),
            message: channels(ServiceName::Message)
                .await?
                .into_iter()
                .map(|channel| {
                    MessageServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                })
                .collect(),
            chat: channels(ServiceName::Chat)
                .await?
                .into_iter()
                .map(|channel| {
                    ChatServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                })
                .collect(),
            file: channels(ServiceName::File)
                .await?
                .into_iter()
                .map(|channel| {
                    FileServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                })
                .collect(),
            search: channels(ServiceName::Search)
                .await?
                .into_iter()
                .map(|channel| {
                    SearchServiceClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES)
                })
                .collect(),
        })
    }

    pub fn user(&self, worker: usize) -> UserServiceClient<Channel> {
        self.user[worker % self.user.len()].clone()
    }

    pub fn friend(&self, worker: usize) -> FriendServiceClient<Channel> {
        self.friend[worker % self.friend.len()].clone()
    }

    pub fn message(&self, worker: usize) -> MessageServiceClient<Channel> {
        self.message[worker % self.message.len()].clone()
    }

    pub fn chat(&self, worker: usize) -> ChatServiceClient<Channel> {
        self.chat[worker % self.chat.len()].clone()
    }

    pub fn file(&self, worker: usize) -> FileServiceClient<Channel> {
        self.file[worker % self.file.len()].clone()
    }

    pub fn search(&self, worker: usize) -> SearchServiceClient<Channel> {
        self.search[worker % self.search.len()].clone()
    }
}

/// Opens `count` HTTP/2 connections to `uri`.
pub async fn connect_channels(uri: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(uri.to_owned())
        .with_context(|| format!("invalid endpoint `{uri}`"))?
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("failed to connect to {uri}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Wraps `message` in a request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}
