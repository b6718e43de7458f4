//! The Beehive scenarios: a fixture of users, friendships and chats made through the public
//! RPCs before measuring, and one call per scenario.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use beehive_generated::pb::chat::CreateConversationRequest;
use beehive_generated::pb::file::{
    CompleteMultipartUploadRequest, InitMultipartUploadRequest, PartInfo, UploadPartRequest,
};
use beehive_generated::pb::message::GetMessagesRequest;
use beehive_generated::pb::search::SearchMessagesRequest;
use beehive_generated::pb::user::{GetUserInfoRequest, LoginRequest};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::harness::CallFn;
use crate::cli::Scenario;
use crate::clients::{Clients, with_token};
use crate::corpus::Corpus;
use crate::replay::api::{ReplayApi, Session, StepError};
use crate::replay::grpc::GrpcReplayApi;

/// Users the fixture registers; every pair of them becomes friends with a single chat.
const FIXTURE_USERS: usize = 12;
/// Messages written into each of the first [`HISTORY_CHATS`] chats for `history`.
const HISTORY_MESSAGES: usize = 120;
/// Chats that `history` reads.
const HISTORY_CHATS: usize = 8;
/// Page size of `history` reads: the newest page.
const HISTORY_PAGE: i32 = 50;
/// Corpus messages sent into the fixture's group chat before `search` runs.
const SEARCH_CORPUS_MESSAGES: usize = 20_000;
/// Page size of `search` queries.
const SEARCH_PAGE: i32 = 20;
/// Words `search` looks for, in turn; each occurs in the chitchat corpus.
const SEARCH_KEYWORDS: [&str; 10] = [
    "movie", "music", "school", "weekend", "dog", "pizza", "travel", "game", "book", "weather",
];
/// Sizes of the two parts of each `upload`: one full 5 MiB part and a 1 MiB tail.
const UPLOAD_PARTS: [usize; 2] = [5 * 1024 * 1024, 1024 * 1024];
/// How long `search` setup waits for the index to catch up with the sent messages.
const INDEX_TIMEOUT: Duration = Duration::from_secs(120);
/// Calls in flight while the fixture is built.
const SETUP_CONCURRENCY: usize = 16;
/// Deadline of each upload call: a 5 MiB part takes longer than the server's 2 s default
/// on a loaded machine.
const UPLOAD_DEADLINE: Duration = Duration::from_secs(30);
/// `type` of a group conversation.
const GROUP_CHAT: i32 = 2;

/// Users, friendships and chats made before a scenario runs.
pub struct Fixture {
    clients: Clients,
    users: Vec<Session>,
    credentials: Vec<(String, String)>,
    /// `(first user, second user, conversation id)` per pair of users.
    chats: Vec<(usize, usize, i64)>,
}

impl Fixture {
    /// Registers [`FIXTURE_USERS`] users named after `run_id` and makes every pair friends
    /// with a single chat.
    pub async fn build(clients: Clients, outbox: &Path, run_id: &str) -> anyhow::Result<Self> {
        let api = GrpcReplayApi::new(clients.clone(), outbox.to_owned());
        let mut users = Vec::with_capacity(FIXTURE_USERS);
        let mut credentials = Vec::with_capacity(FIXTURE_USERS);
        for index in 0..FIXTURE_USERS {
            let username = format!("bench-{run_id}-{index}");
            let email = format!("{username}@bench.beehive.test");
            let password = format!("Bench-{run_id}-password");
            let session = login_or_register(&api, &username, &email, &password)
                .await
                .with_context(|| format!("failed to set up user {username}"))?;
            users.push(session);
            credentials.push((username, password));
        }

        let pairs: Vec<(usize, usize)> = (0..FIXTURE_USERS)
            .flat_map(|a| ((a + 1)..FIXTURE_USERS).map(move |b| (a, b)))
            .collect();
        let users_ref = &users;
        let api_ref = &api;
        let chats: Vec<anyhow::Result<(usize, usize, i64)>> = futures::stream::iter(pairs)
            .map(|(a, b)| async move {
                let (first, second) = (&users_ref[a], &users_ref[b]);
                if !api_ref.is_friend(first, second.user_id).await? {
                    let request = api_ref
                        .send_friend_request(first, second.user_id, "bench")
                        .await?;
                    api_ref.accept_friend_request(second, request).await?;
                }
                let conversation = api_ref.single_conversation(first, second.user_id).await?;
                Ok((a, b, conversation))
            })
            .buffered(SETUP_CONCURRENCY)
            .collect()
            .await;
        let chats = chats
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()
            .context("failed to set up the fixture's chats")?;
        Ok(Self {
            clients,
            users,
            credentials,
            chats,
        })
    }

    /// Prepares `scenario` and returns its call.
    pub async fn scenario(
        self: &Arc<Self>,
        scenario: Scenario,
        dataset: &Path,
    ) -> anyhow::Result<CallFn> {
        match scenario {
            Scenario::Echo => anyhow::bail!("echo needs no fixture"),
            Scenario::GetUser => Ok(self.get_user().await),
            Scenario::Login => Ok(self.login()),
            Scenario::Send => Ok(self.send()),
            Scenario::History => self.history().await,
            Scenario::Search => self.search(dataset).await,
            Scenario::Upload => Ok(self.upload()),
        }
    }

    /// GetUserInfo of the caller itself; one call beforehand fills the cache.
    async fn get_user(self: &Arc<Self>) -> CallFn {
        let fixture = Arc::clone(self);
        for user in &fixture.users {
            let request = GetUserInfoRequest {
                user_id: user.user_id,
            };
            let _ = fixture
                .clients
                .user(0)
                .get_user_info(with_token(request, &user.token))
                .await;
        }
        Arc::new(move |worker| {
            let fixture = Arc::clone(&fixture);
            Box::pin(async move {
                let user = &fixture.users[worker % fixture.users.len()];
                let request = GetUserInfoRequest {
                    user_id: user.user_id,
                };
                fixture
                    .clients
                    .user(worker)
                    .get_user_info(with_token(request, &user.token))
                    .await
                    .map(|_| ())
            })
        })
    }

    /// Login with the right password.
    fn login(self: &Arc<Self>) -> CallFn {
        let fixture = Arc::clone(self);
        Arc::new(move |worker| {
            let fixture = Arc::clone(&fixture);
            Box::pin(async move {
                let (account, password) = &fixture.credentials[worker % fixture.credentials.len()];
                let request = LoginRequest {
                    account: account.clone(),
                    password: password.clone(),
                };
                fixture
                    .clients
                    .user(worker)
                    .login(request)
                    .await
                    .map(|_| ())
            })
        })
    }

    /// SendMessage into the worker's own single chat, the two members taking turns.
    fn send(self: &Arc<Self>) -> CallFn {
        let fixture = Arc::clone(self);
        let counter = Arc::new(AtomicU64::new(0));
        Arc::new(move |worker| {
            let fixture = Arc::clone(&fixture);
            let number = counter.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                let (a, b, conversation) = fixture.chats[worker % fixture.chats.len()];
                let sender = if number.is_multiple_of(2) { a } else { b };
                fixture
                    .send_text(
                        worker,
                        sender,
                        conversation,
                        format!("bench message {number}"),
                    )
                    .await
                    .map(|_| ())
            })
        })
    }

    /// GetMessages, the newest page of a chat with [`HISTORY_MESSAGES`] messages.
    async fn history(self: &Arc<Self>) -> anyhow::Result<CallFn> {
        let chats = &self.chats[..HISTORY_CHATS.min(self.chats.len())];
        for (index, &(a, b, conversation)) in chats.iter().enumerate() {
            for number in 0..HISTORY_MESSAGES {
                let sender = if number.is_multiple_of(2) { a } else { b };
                self.send_text(index, sender, conversation, format!("history {number}"))
                    .await
                    .context("failed to fill a chat for the history scenario")?;
            }
        }

        let fixture = Arc::clone(self);
        let chat_count = chats.len();
        Ok(Arc::new(move |worker| {
            let fixture = Arc::clone(&fixture);
            Box::pin(async move {
                let (reader, _, conversation) = fixture.chats[worker % chat_count];
                let request = GetMessagesRequest {
                    conversation_id: conversation,
                    before_id: 0,
                    limit: HISTORY_PAGE,
                };
                fixture
                    .clients
                    .message(worker)
                    .get_messages(with_token(request, &fixture.users[reader].token))
                    .await
                    .map(|_| ())
            })
        }))
    }

    /// SearchMessages over a group chat holding [`SEARCH_CORPUS_MESSAGES`] corpus messages.
    async fn search(self: &Arc<Self>, dataset: &Path) -> anyhow::Result<CallFn> {
        let owner = &self.users[0];
        let request = CreateConversationRequest {
            r#type: GROUP_CHAT,
            name: "bench search".to_owned(),
            owner_id: owner.user_id,
            member_ids: self.users[1..].iter().map(|user| user.user_id).collect(),
        };
        let group = self
            .clients
            .chat(0)
            .create_conversation(with_token(request, &owner.token))
            .await
            .context("failed to create the search group")?
            .into_inner()
            .conversation_id;

        let corpus = Corpus::load(dataset)?;
        let texts: Vec<String> = corpus
            .conversations
            .iter()
            .flat_map(|conversation| conversation.messages.iter())
            .map(|message| message.text.trim().to_owned())
            .filter(|text| !text.is_empty())
            .take(SEARCH_CORPUS_MESSAGES)
            .collect();
        drop(corpus);
        let fixture = Arc::clone(self);
        let sent: Vec<Result<i64, tonic::Status>> =
            futures::stream::iter(texts.into_iter().enumerate())
                .map(|(number, text)| {
                    let fixture = Arc::clone(&fixture);
                    async move {
                        let sender = number % fixture.users.len();
                        fixture.send_text(number, sender, group, text).await
                    }
                })
                .buffer_unordered(SETUP_CONCURRENCY)
                .collect()
                .await;
        if let Some(Err(status)) = sent.iter().find(|result| result.is_err()) {
            anyhow::bail!("failed to fill the search group: {status}");
        }

        let marker = format!("zzbenchmarker{}", owner.user_id);
        self.send_text(0, 0, group, marker.clone()).await?;
        self.wait_indexed(&marker).await?;

        let fixture = Arc::clone(self);
        let counter = Arc::new(AtomicU64::new(0));
        Ok(Arc::new(move |worker| {
            let fixture = Arc::clone(&fixture);
            let number = counter.fetch_add(1, Ordering::Relaxed) as usize;
            Box::pin(async move {
                let user = &fixture.users[worker % fixture.users.len()];
                let request = SearchMessagesRequest {
                    keyword: SEARCH_KEYWORDS[number % SEARCH_KEYWORDS.len()].to_owned(),
                    user_id: user.user_id,
                    conversation_id: 0,
                    page: 1,
                    page_size: SEARCH_PAGE,
                };
                fixture
                    .clients
                    .search(worker)
                    .search_messages(with_token(request, &user.token))
                    .await
                    .map(|_| ())
            })
        }))
    }

    /// Multipart upload of fresh content: init, two parts, complete.
    fn upload(self: &Arc<Self>) -> CallFn {
        let fixture = Arc::clone(self);
        let counter = Arc::new(AtomicU64::new(0));
        let base: Arc<Vec<u8>> = Arc::new(
            (0..UPLOAD_PARTS.iter().sum::<usize>())
                .map(|index| (index % 251) as u8)
                .collect(),
        );
        Arc::new(move |worker| {
            let fixture = Arc::clone(&fixture);
            let base = Arc::clone(&base);
            let number = counter.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move { fixture.upload_once(worker, number, &base).await })
        })
    }

    async fn upload_once(
        &self,
        worker: usize,
        number: u64,
        base: &[u8],
    ) -> Result<(), tonic::Status> {
        let user = &self.users[worker % self.users.len()];
        let mut content = base.to_vec();
        // Distinct leading bytes give every upload its own hash, so none is deduplicated.
        let nonce = format!("{}:{number}:{}", user.user_id, std::process::id());
        content[..nonce.len()].copy_from_slice(nonce.as_bytes());
        let hash = hex::encode(Sha256::digest(&content));

        let mut client = self.clients.file(worker);
        let init = InitMultipartUploadRequest {
            user_id: user.user_id,
            file_name: format!("bench-{number}.bin"),
            file_size: content.len() as i64,
            file_type: "application/octet-stream".to_owned(),
            file_hash: hash,
            total_parts: UPLOAD_PARTS.len() as i32,
        };
        let upload_id = client
            .init_multipart_upload(with_deadline(with_token(init, &user.token)))
            .await?
            .into_inner()
            .upload_id;

        let mut parts = Vec::with_capacity(UPLOAD_PARTS.len());
        let mut offset = 0;
        for (index, size) in UPLOAD_PARTS.iter().enumerate() {
            let part_number = index as i32 + 1;
            let request = UploadPartRequest {
                upload_id: upload_id.clone(),
                part_number,
                part_data: content[offset..offset + size].to_vec(),
            };
            offset += size;
            let etag = client
                .upload_part(with_deadline(with_token(request, &user.token)))
                .await?
                .into_inner()
                .etag;
            parts.push(PartInfo { part_number, etag });
        }
        let complete = CompleteMultipartUploadRequest { upload_id, parts };
        client
            .complete_multipart_upload(with_deadline(with_token(complete, &user.token)))
            .await?;
        Ok(())
    }

    async fn send_text(
        &self,
        worker: usize,
        sender: usize,
        conversation: i64,
        content: String,
    ) -> Result<i64, tonic::Status> {
        let user = &self.users[sender];
        let request = beehive_generated::pb::message::SendMessageRequest {
            conversation_id: conversation,
            sender_id: user.user_id,
            content_type: 1,
            content,
            extra_data: String::new(),
            client_msg_id: String::new(),
        };
        self.clients
            .message(worker)
            .send_message(with_token(request, &user.token))
            .await
            .map(|response| response.into_inner().message_id)
    }

    /// Waits until a search for `marker` finds the message that holds it.
    async fn wait_indexed(&self, marker: &str) -> anyhow::Result<()> {
        let user = &self.users[0];
        let started = Instant::now();
        loop {
            let request = SearchMessagesRequest {
                keyword: marker.to_owned(),
                user_id: user.user_id,
                conversation_id: 0,
                page: 1,
                page_size: 1,
            };
            let found = self
                .clients
                .search(0)
                .search_messages(with_token(request, &user.token))
                .await
                .map(|response| response.into_inner().total > 0)
                .unwrap_or(false);
            if found {
                return Ok(());
            }
            if started.elapsed() > INDEX_TIMEOUT {
                anyhow::bail!(
                    "the search index did not catch up within {}s",
                    INDEX_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn with_deadline<T>(mut request: tonic::Request<T>) -> tonic::Request<T> {
    request.set_timeout(UPLOAD_DEADLINE);
    request
}

async fn login_or_register(
    api: &GrpcReplayApi,
    username: &str,
    email: &str,
    password: &str,
) -> Result<Session, StepError> {
    match api.login(username, password).await {
        Ok(session) => Ok(session),
        Err(StepError::Rpc(status)) if status.code() == tonic::Code::Unauthenticated => {
            let code = api.request_code(email).await?;
            api.register(username, email, password, &code).await
        }
        Err(err) => Err(err),
    }
}
