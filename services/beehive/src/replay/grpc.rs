//! [`ReplayApi`] over gRPC: the public RPCs of a running deployment, with verification codes
//! read back from its mail outbox.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use beehive_generated::pb::chat::CreateConversationRequest;
use beehive_generated::pb::friend::{
    GetFriendRequestsRequest, HandleFriendRequestRequest, IsFriendRequest, SendFriendRequestRequest,
};
use beehive_generated::pb::message::SendMessageRequest;
use beehive_generated::pb::user::{LoginRequest, RegisterRequest, SendCodeRequest};

use super::api::{ReplayApi, Session, StepError, StepResult};
use crate::clients::Clients;

/// How long a replay waits for a verification code to appear in the outbox.
const CODE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two looks into the outbox.
const CODE_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Deadline of each call. A batch tool can wait longer than the server's 2 s default, which a
/// loaded machine (bcrypt work, many writers) may exceed without anything being wrong.
const CALL_DEADLINE: Duration = Duration::from_secs(15);
/// `type` of a single (one-to-one) conversation.
const SINGLE_CHAT: i32 = 1;
/// `content_type` of a text message.
const TEXT: i32 = 1;
/// `status` of a pending friend request.
const PENDING: i32 = 0;

/// The deployment's RPCs, spread over the clients' connections round-robin.
pub struct GrpcReplayApi {
    clients: Clients,
    outbox: PathBuf,
    next: AtomicUsize,
}

impl GrpcReplayApi {
    /// `outbox` is the deployment's mail outbox folder (`<data_dir>/outbox`).
    pub fn new(clients: Clients, outbox: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            clients,
            outbox,
            next: AtomicUsize::new(0),
        })
    }

    fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The newest outbox file to `email`, or `None`.
    fn newest_mail(&self, email: &str) -> StepResult<Option<PathBuf>> {
        beehive_runtime::mail::latest_message(&self.outbox, email)
            .map(|mail| mail.map(|mail| mail.path))
            .map_err(|err| StepError::Outbox {
                email: email.to_owned(),
                reason: err.to_string(),
            })
    }
}

/// Wraps `message` with the bearer token and [`CALL_DEADLINE`].
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    with_deadline(crate::clients::with_token(message, token))
}

fn with_deadline<T>(message: impl tonic::IntoRequest<T>) -> tonic::Request<T> {
    let mut request = message.into_request();
    request.set_timeout(CALL_DEADLINE);
    request
}

impl ReplayApi for GrpcReplayApi {
    async fn login(&self, username: &str, password: &str) -> StepResult<Session> {
        let response = self
            .clients
            .user(self.pick())
            .login(with_deadline(LoginRequest {
                account: username.to_owned(),
                password: password.to_owned(),
            }))
            .await?
            .into_inner();
        Ok(Session {
            user_id: response.user_id,
            token: response.token,
        })
    }

    async fn request_code(&self, email: &str) -> StepResult<String> {
        let before = self.newest_mail(email)?;
        self.clients
            .user(self.pick())
            .send_verification_code(with_deadline(SendCodeRequest {
                email: email.to_owned(),
                purpose: "register".to_owned(),
            }))
            .await?;

        let started = Instant::now();
        loop {
            let newest = self.newest_mail(email)?;
            if newest.is_some() && newest != before {
                let code =
                    beehive_runtime::mail::latest_code(&self.outbox, email).map_err(|err| {
                        StepError::Outbox {
                            email: email.to_owned(),
                            reason: err.to_string(),
                        }
                    })?;
                return code.ok_or_else(|| StepError::Outbox {
                    email: email.to_owned(),
                    reason: "the newest message holds no six-digit code".to_owned(),
                });
            }
            if started.elapsed() > CODE_TIMEOUT {
                return Err(StepError::Outbox {
                    email: email.to_owned(),
                    reason: format!(
                        "nothing new in {} after {}s",
                        self.outbox.display(),
                        CODE_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(CODE_POLL_INTERVAL).await;
        }
    }

    async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        code: &str,
    ) -> StepResult<Session> {
        let response = self
            .clients
            .user(self.pick())
            .register(with_deadline(RegisterRequest {
                username: username.to_owned(),
                email: email.to_owned(),
                password: password.to_owned(),
                code: code.to_owned(),
            }))
            .await?
            .into_inner();
        Ok(Session {
            user_id: response.user_id,
            token: response.token,
        })
    }

    async fn is_friend(&self, user: &Session, friend_id: i64) -> StepResult<bool> {
        let request = IsFriendRequest {
            user_id: user.user_id,
            friend_id,
        };
        let response = self
            .clients
            .friend(self.pick())
            .is_friend(with_token(request, &user.token))
            .await?
            .into_inner();
        Ok(response.is_friend)
    }

    async fn send_friend_request(
        &self,
        from: &Session,
        to_user_id: i64,
        message: &str,
    ) -> StepResult<i64> {
        let request = SendFriendRequestRequest {
            from_user_id: from.user_id,
            to_user_id,
            message: message.to_owned(),
        };
        let response = self
            .clients
            .friend(self.pick())
            .send_friend_request(with_token(request, &from.token))
            .await?
            .into_inner();
        Ok(response.request_id)
    }

    async fn pending_request_from(
        &self,
        to: &Session,
        from_user_id: i64,
    ) -> StepResult<Option<i64>> {
        let request = GetFriendRequestsRequest {
            user_id: to.user_id,
        };
        let response = self
            .clients
            .friend(self.pick())
            .get_friend_requests(with_token(request, &to.token))
            .await?
            .into_inner();
        Ok(response
            .requests
            .iter()
            .find(|request| {
                request.from_user_id == from_user_id
                    && request.to_user_id == to.user_id
                    && request.status == PENDING
            })
            .map(|request| request.request_id))
    }

    async fn accept_friend_request(&self, to: &Session, request_id: i64) -> StepResult<()> {
        let request = HandleFriendRequestRequest {
            request_id,
            user_id: to.user_id,
            accept: true,
        };
        self.clients
            .friend(self.pick())
            .handle_friend_request(with_token(request, &to.token))
            .await?;
        Ok(())
    }

    async fn single_conversation(&self, owner: &Session, peer_id: i64) -> StepResult<i64> {
        let request = CreateConversationRequest {
            r#type: SINGLE_CHAT,
            name: String::new(),
            owner_id: owner.user_id,
            member_ids: vec![peer_id],
        };
        let response = self
            .clients
            .chat(self.pick())
            .create_conversation(with_token(request, &owner.token))
            .await?
            .into_inner();
        Ok(response.conversation_id)
    }

    async fn send_message(
        &self,
        sender: &Session,
        conversation_id: i64,
        text: &str,
        client_message_id: &str,
    ) -> StepResult<i64> {
        let request = SendMessageRequest {
            conversation_id,
            sender_id: sender.user_id,
            content_type: TEXT,
            content: text.to_owned(),
            extra_data: String::new(),
            client_msg_id: client_message_id.to_owned(),
        };
        let response = self
            .clients
            .message(self.pick())
            .send_message(with_token(request, &sender.token))
            .await?
            .into_inner();
        Ok(response.message_id)
    }
}
