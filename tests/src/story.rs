//! The whole user story over real gRPC connections: register with a code from the mail outbox,
//! log in, befriend, chat, page the history, unread counts, mark read, search in English and
//! Chinese, upload and deduplicate a file, and finally end the friendship, after which the
//! single chat refuses new messages.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use beehive::clients::{Clients, Endpoints, with_token};
use beehive_generated::pb::chat::{
    CreateConversationRequest, GetConversationsRequest, MarkReadRequest,
};
use beehive_generated::pb::file::{CheckFileExistsRequest, UploadFileRequest};
use beehive_generated::pb::friend::{
    DeleteFriendRequest, GetFriendRequestsRequest, GetFriendsRequest, HandleFriendRequestRequest,
    IsFriendRequest, SendFriendRequestRequest,
};
use beehive_generated::pb::message::{GetMessagesRequest, MessageInfo, SendMessageRequest};
use beehive_generated::pb::search::{SearchMessagesRequest, SearchMessagesResponse};
use beehive_generated::pb::user::{
    LoginRequest, RegisterRequest, SendCodeRequest, VerifyCodeRequest,
};
use sha2::{Digest, Sha256};

/// How long the story waits for a mail or for the search index.
const WAIT: Duration = Duration::from_secs(20);
/// How long a send may still pass after a friendship ended: the message service caches a
/// membership check for 2 s, plus room for a slow machine.
const FRIENDSHIP_END_DELAY: Duration = Duration::from_secs(5);
const SINGLE_CHAT: i32 = 1;
const TEXT: i32 = 1;

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub token: String,
    pub username: String,
}

/// Messages of the story, in sending order: `(sender is alice, text)`.
const CONVERSATION: [(bool, &str); 8] = [
    (true, "hello bob, are you free this weekend?"),
    (false, "hi alice! yes, what do you have in mind?"),
    (true, "there is a new movie about the ocean"),
    (true, "we could watch it on saturday evening"),
    (false, "sounds great, I love the ocean"),
    (true, "我们明天去北京吃烤鸭吧"),
    (true, "然后去看电影"),
    (false, "好的，明天见"),
];

/// Runs the story against the deployment at `endpoints`; `outbox` is its mail outbox folder.
/// `tag` keeps usernames and emails unique when several stories share backends.
pub async fn run(endpoints: &Endpoints, outbox: &Path, tag: &str) -> anyhow::Result<()> {
    let clients = Clients::connect(endpoints, 1).await?;
    let story = Story {
        clients,
        outbox: outbox.to_owned(),
    };

    let alice = story.register(&format!("alice-{tag}")).await?;
    let bob = story.register(&format!("bob-{tag}")).await?;
    story.rejected_register_writes_nothing(tag).await?;
    story.login_matches(&alice).await?;

    story.befriend(&alice, &bob).await?;
    let conversation = story.single_chat(&alice, &bob).await?;
    let sent = story.send_all(&alice, &bob, conversation).await?;
    story.idempotent_send(&alice, conversation, &sent).await?;
    story.page_history(&bob, conversation, &sent).await?;
    story
        .unread_and_mark_read(&alice, &bob, conversation)
        .await?;
    story.search(&alice, &bob, conversation).await?;
    story.upload_and_dedup(&alice, &bob).await?;
    story
        .former_friend_cannot_send(&alice, &bob, conversation)
        .await?;
    Ok(())
}

struct Story {
    clients: Clients,
    outbox: PathBuf,
}

impl Story {
    /// SendVerificationCode, the code from the outbox, VerifyCode, Register.
    async fn register(&self, username: &str) -> anyhow::Result<User> {
        let email = format!("{username}@story.beehive.test");
        let code = self.code_for(&email).await?;

        let verify = VerifyCodeRequest {
            email: email.clone(),
            code: code.clone(),
            purpose: "register".to_owned(),
        };
        let verified = self.clients.user(0).verify_code(verify).await?.into_inner();
        ensure!(verified.success, "VerifyCode rejected a fresh code");

        let request = RegisterRequest {
            username: username.to_owned(),
            email,
            password: password(username),
            code,
        };
        let registered = self.clients.user(0).register(request).await?.into_inner();
        ensure!(
            registered.user_id > 0,
            "Register returned user id {}",
            registered.user_id
        );
        ensure!(!registered.token.is_empty(), "Register returned no token");
        Ok(User {
            id: registered.user_id,
            token: registered.token,
            username: username.to_owned(),
        })
    }

    async fn code_for(&self, email: &str) -> anyhow::Result<String> {
        let request = SendCodeRequest {
            email: email.to_owned(),
            purpose: "register".to_owned(),
        };
        self.clients.user(0).send_verification_code(request).await?;
        let started = Instant::now();
        loop {
            if let Some(code) = beehive_runtime::mail::latest_code(&self.outbox, email)? {
                return Ok(code);
            }
            if started.elapsed() > WAIT {
                bail!("no code for {email} in {}", self.outbox.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A wrong code is INVALID_ARGUMENT naming `code`, and no account appears.
    async fn rejected_register_writes_nothing(&self, tag: &str) -> anyhow::Result<()> {
        let username = format!("mallory-{tag}");
        let email = format!("{username}@story.beehive.test");
        let code = self.code_for(&email).await?;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let request = RegisterRequest {
            username: username.clone(),
            email,
            password: password(&username),
            code: wrong.to_owned(),
        };
        let status = match self.clients.user(0).register(request).await {
            Ok(_) => bail!("Register accepted a wrong code"),
            Err(status) => status,
        };
        ensure!(
            status.code() == tonic::Code::InvalidArgument,
            "wrong code gave {status:?}"
        );
        ensure!(
            status.message().contains("code"),
            "message: {}",
            status.message()
        );

        let login = LoginRequest {
            account: username.clone(),
            password: password(&username),
        };
        match self.clients.user(0).login(login).await {
            Ok(_) => bail!("a refused Register still created {username}"),
            Err(status) => ensure!(
                status.code() == tonic::Code::Unauthenticated,
                "login of a refused user gave {status:?}"
            ),
        }
        Ok(())
    }

    async fn login_matches(&self, user: &User) -> anyhow::Result<()> {
        let request = LoginRequest {
            account: user.username.clone(),
            password: password(&user.username),
        };
        let response = self.clients.user(0).login(request).await?.into_inner();
        ensure!(
            response.user_id == user.id,
            "login returned user {}",
            response.user_id
        );
        ensure!(
            response.username == user.username,
            "login returned {}",
            response.username
        );

        let wrong = LoginRequest {
            account: user.username.clone(),
            password: "not-the-password".to_owned(),
        };
        match self.clients.user(0).login(wrong).await {
            Ok(_) => bail!("login with a wrong password succeeded"),
            Err(status) => ensure!(
                status.code() == tonic::Code::Unauthenticated,
                "wrong password gave {status:?}"
            ),
        }
        Ok(())
    }

    async fn befriend(&self, alice: &User, bob: &User) -> anyhow::Result<()> {
        let request = SendFriendRequestRequest {
            from_user_id: alice.id,
            to_user_id: bob.id,
            message: "hi, it's alice".to_owned(),
        };
        let request_id = self
            .clients
            .friend(0)
            .send_friend_request(with_token(request, &alice.token))
            .await?
            .into_inner()
            .request_id;

        let listed = self
            .clients
            .friend(0)
            .get_friend_requests(with_token(
                GetFriendRequestsRequest { user_id: bob.id },
                &bob.token,
            ))
            .await?
            .into_inner()
            .requests;
        ensure!(listed.len() == 1, "bob sees {} requests", listed.len());
        ensure!(listed[0].request_id == request_id, "listed {:?}", listed[0]);
        ensure!(listed[0].status == 0, "request status {}", listed[0].status);

        let accept = HandleFriendRequestRequest {
            request_id,
            user_id: bob.id,
            accept: true,
        };
        self.clients
            .friend(0)
            .handle_friend_request(with_token(accept, &bob.token))
            .await?;

        for (user, other) in [(alice, bob), (bob, alice)] {
            let request = IsFriendRequest {
                user_id: user.id,
                friend_id: other.id,
            };
            let is_friend = self
                .clients
                .friend(0)
                .is_friend(with_token(request, &user.token))
                .await?
                .into_inner()
                .is_friend;
            ensure!(
                is_friend,
                "{} is not a friend of {}",
                other.username,
                user.username
            );
        }
        let friends = self
            .clients
            .friend(0)
            .get_friends(with_token(
                GetFriendsRequest { user_id: alice.id },
                &alice.token,
            ))
            .await?
            .into_inner()
            .friends;
        let ids: Vec<i64> = friends.iter().map(|friend| friend.friend_id).collect();
        ensure!(ids == [bob.id], "alice's friends: {ids:?}");
        Ok(())
    }

    async fn single_chat(&self, alice: &User, bob: &User) -> anyhow::Result<i64> {
        let request = || CreateConversationRequest {
            r#type: SINGLE_CHAT,
            name: String::new(),
            owner_id: alice.id,
            member_ids: vec![bob.id],
        };
        let first = self
            .clients
            .chat(0)
            .create_conversation(with_token(request(), &alice.token))
            .await?
            .into_inner()
            .conversation_id;
        let again = self
            .clients
            .chat(0)
            .create_conversation(with_token(request(), &alice.token))
            .await?
            .into_inner()
            .conversation_id;
        ensure!(
            first == again,
            "a second single chat {again} besides {first}"
        );
        Ok(first)
    }

    /// Sends [`CONVERSATION`] and returns the message ids in sending order.
    async fn send_all(
        &self,
        alice: &User,
        bob: &User,
        conversation: i64,
    ) -> anyhow::Result<Vec<i64>> {
        let mut ids = Vec::new();
        for (index, (from_alice, text)) in CONVERSATION.iter().enumerate() {
            let sender = if *from_alice { alice } else { bob };
            let id = self
                .send(sender, conversation, text, &format!("story-{index}"))
                .await?;
            ids.push(id);
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        ensure!(
            sorted == ids,
            "message ids do not grow in sending order: {ids:?}"
        );
        Ok(ids)
    }

    async fn send(
        &self,
        sender: &User,
        conversation: i64,
        text: &str,
        client_msg_id: &str,
    ) -> anyhow::Result<i64> {
        let request = SendMessageRequest {
            conversation_id: conversation,
            sender_id: sender.id,
            content_type: TEXT,
            content: text.to_owned(),
            extra_data: String::new(),
            client_msg_id: client_msg_id.to_owned(),
        };
        Ok(self
            .clients
            .message(0)
            .send_message(with_token(request, &sender.token))
            .await?
            .into_inner()
            .message_id)
    }

    /// After alice deletes bob as a friend, bob's sends to their single chat fail with
    /// FAILED_PRECONDITION once the message service's membership cache expires.
    async fn former_friend_cannot_send(
        &self,
        alice: &User,
        bob: &User,
        conversation: i64,
    ) -> anyhow::Result<()> {
        let delete = DeleteFriendRequest {
            user_id: alice.id,
            friend_id: bob.id,
        };
        self.clients
            .friend(0)
            .delete_friend(with_token(delete, &alice.token))
            .await?;

        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = SendMessageRequest {
                conversation_id: conversation,
                sender_id: bob.id,
                content_type: TEXT,
                content: "are we still friends?".to_owned(),
                extra_data: String::new(),
                client_msg_id: format!("after-delete-{attempt}"),
            };
            let sent = self
                .clients
                .message(0)
                .send_message(with_token(request, &bob.token))
                .await;
            match sent {
                Err(status) if status.code() == tonic::Code::FailedPrecondition => return Ok(()),
                Err(status) => bail!("a send after the friendship ended gave {status:?}"),
                Ok(_) if started.elapsed() > FRIENDSHIP_END_DELAY => bail!(
                    "bob could still send {:?} after the friendship ended",
                    started.elapsed()
                ),
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// A retried send returns the first id; empty content is rejected and stores nothing.
    async fn idempotent_send(
        &self,
        alice: &User,
        conversation: i64,
        sent: &[i64],
    ) -> anyhow::Result<()> {
        let retried = self
            .send(alice, conversation, CONVERSATION[0].1, "story-0")
            .await?;
        ensure!(
            retried == sent[0],
            "retried send returned {retried}, first {}",
            sent[0]
        );

        let empty = SendMessageRequest {
            conversation_id: conversation,
            sender_id: alice.id,
            content_type: TEXT,
            content: String::new(),
            extra_data: String::new(),
            client_msg_id: String::new(),
        };
        match self
            .clients
            .message(0)
            .send_message(with_token(empty, &alice.token))
            .await
        {
            Ok(_) => bail!("empty content was accepted"),
            Err(status) => ensure!(
                status.code() == tonic::Code::InvalidArgument,
                "empty content gave {status:?}"
            ),
        }
        Ok(())
    }

    /// Pages of 3, newest first, cover the whole history exactly once.
    async fn page_history(
        &self,
        reader: &User,
        conversation: i64,
        sent: &[i64],
    ) -> anyhow::Result<()> {
        let mut seen: Vec<MessageInfo> = Vec::new();
        let mut before_id = 0;
        let mut pages = 0;
        loop {
            let request = GetMessagesRequest {
                conversation_id: conversation,
                before_id,
                limit: 3,
            };
            let page = self
                .clients
                .message(0)
                .get_messages(with_token(request, &reader.token))
                .await?
                .into_inner();
            pages += 1;
            let Some(last) = page.messages.last() else {
                bail!("empty page {pages} while has_more was true")
            };
            before_id = last.message_id;
            let has_more = page.has_more;
            seen.extend(page.messages);
            if !has_more {
                break;
            }
            ensure!(pages < 10, "history does not end");
        }
        ensure!(pages == 3, "8 messages in pages of 3 took {pages} pages");
        let ids: Vec<i64> = seen.iter().map(|message| message.message_id).collect();
        let newest_first: Vec<i64> = sent.iter().rev().copied().collect();
        ensure!(ids == newest_first, "history ids {ids:?}, sent {sent:?}");
        let texts: Vec<&str> = seen
            .iter()
            .rev()
            .map(|message| message.content.as_str())
            .collect();
        let expected: Vec<&str> = CONVERSATION.iter().map(|(_, text)| *text).collect();
        ensure!(texts == expected, "history texts {texts:?}");
        Ok(())
    }

    /// Alice wrote 5 and Bob 3: each sees the other's messages as unread, never their own.
    async fn unread_and_mark_read(
        &self,
        alice: &User,
        bob: &User,
        conversation: i64,
    ) -> anyhow::Result<()> {
        ensure!(
            self.unread(bob, conversation).await? == 5,
            "bob's unread before MarkRead"
        );
        ensure!(
            self.unread(alice, conversation).await? == 3,
            "alice's unread before MarkRead"
        );

        let request = MarkReadRequest {
            conversation_id: conversation,
            user_id: bob.id,
        };
        self.clients
            .chat(0)
            .mark_read(with_token(request, &bob.token))
            .await?;
        let bob_after = self.unread(bob, conversation).await?;
        ensure!(bob_after == 0, "bob's unread after MarkRead is {bob_after}");
        let alice_after = self.unread(alice, conversation).await?;
        ensure!(alice_after == 3, "alice's unread changed to {alice_after}");
        Ok(())
    }

    async fn unread(&self, user: &User, conversation: i64) -> anyhow::Result<i32> {
        let conversations = self
            .clients
            .chat(0)
            .get_conversations(with_token(
                GetConversationsRequest { user_id: user.id },
                &user.token,
            ))
            .await?
            .into_inner()
            .conversations;
        let info = conversations
            .iter()
            .find(|info| info.conversation_id == conversation)
            .with_context(|| {
                format!(
                    "{} does not list conversation {conversation}",
                    user.username
                )
            })?;
        Ok(info.unread_count)
    }

    async fn search(&self, alice: &User, bob: &User, conversation: i64) -> anyhow::Result<()> {
        let ocean = self.search_until(alice, "ocean", 2).await?;
        ensure!(ocean.total == 2, "`ocean` total {}", ocean.total);
        for hit in &ocean.messages {
            ensure!(
                hit.conversation_id == conversation,
                "hit in {}",
                hit.conversation_id
            );
            ensure!(
                hit.highlight.contains("<em>ocean</em>"),
                "highlight {}",
                hit.highlight
            );
        }

        let beijing = self.search_until(bob, "北京", 1).await?;
        ensure!(beijing.total == 1, "`北京` total {}", beijing.total);
        ensure!(
            beijing.messages[0].content == CONVERSATION[5].1,
            "`北京` found {}",
            beijing.messages[0].content
        );
        let movie = self.search_until(bob, "电影", 1).await?;
        ensure!(
            movie.messages[0].content == CONVERSATION[6].1,
            "`电影` found {}",
            movie.messages[0].content
        );
        Ok(())
    }

    /// Searches until at least `want` hits show up (indexing is asynchronous).
    async fn search_until(
        &self,
        user: &User,
        keyword: &str,
        want: i64,
    ) -> anyhow::Result<SearchMessagesResponse> {
        let started = Instant::now();
        loop {
            let request = SearchMessagesRequest {
                keyword: keyword.to_owned(),
                user_id: user.id,
                conversation_id: 0,
                page: 1,
                page_size: 10,
            };
            let response = self
                .clients
                .search(0)
                .search_messages(with_token(request, &user.token))
                .await?
                .into_inner();
            if response.total >= want {
                return Ok(response);
            }
            if started.elapsed() > WAIT {
                bail!(
                    "search for `{keyword}` found {} of {want} within {WAIT:?}",
                    response.total
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The same bytes uploaded twice share one file id; the second is a duplicate.
    async fn upload_and_dedup(&self, alice: &User, bob: &User) -> anyhow::Result<()> {
        let content = format!("beehive story attachment {}", alice.username).into_bytes();
        let hash = hex::encode(Sha256::digest(&content));
        let upload = |user: &User| UploadFileRequest {
            user_id: user.id,
            file_name: "notes.txt".to_owned(),
            file_size: content.len() as i64,
            file_type: "text/plain".to_owned(),
            file_hash: hash.to_uppercase(),
            file_data: content.clone(),
        };
        let first = self
            .clients
            .file(0)
            .upload_file(with_token(upload(alice), &alice.token))
            .await?
            .into_inner();
        ensure!(!first.is_duplicate, "first upload reported as a duplicate");
        ensure!(first.file_hash == hash, "stored hash {}", first.file_hash);

        let second = self
            .clients
            .file(0)
            .upload_file(with_token(upload(bob), &bob.token))
            .await?
            .into_inner();
        ensure!(
            second.is_duplicate,
            "second upload not reported as a duplicate"
        );
        ensure!(
            second.file_id == first.file_id,
            "file ids {} and {}",
            first.file_id,
            second.file_id
        );
        ensure!(
            second.file_url == first.file_url,
            "urls {} and {}",
            first.file_url,
            second.file_url
        );

        let exists = self
            .clients
            .file(0)
            .check_file_exists(with_token(
                CheckFileExistsRequest { file_hash: hash },
                &alice.token,
            ))
            .await?
            .into_inner();
        ensure!(exists.exists, "CheckFileExists does not find the upload");
        ensure!(
            exists.file_id == first.file_id,
            "CheckFileExists id {}",
            exists.file_id
        );
        Ok(())
    }
}

fn password(username: &str) -> String {
    format!("Story-{username}-pw")
}
