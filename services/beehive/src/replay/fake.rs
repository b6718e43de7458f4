//! An in-memory [`ReplayApi`] with the service's idempotency rules, for tests of the replay logic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::api::{ReplayApi, Session, StepError, StepResult};

#[derive(Default)]
struct State {
    next_id: i64,
    /// username → (user id, password)
    users: HashMap<String, (i64, String)>,
    codes: HashMap<String, String>,
    friends: Vec<(i64, i64)>,
    /// request id → (from, to, accepted)
    requests: HashMap<i64, (i64, i64, bool)>,
    conversations: HashMap<(i64, i64), i64>,
    /// client message id → message id
    messages: HashMap<String, i64>,
}

impl State {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
}

/// In-memory service; every `fail_every`-th call answers RESOURCE_EXHAUSTED first.
#[derive(Default)]
pub struct FakeApi {
    state: Mutex<State>,
    calls: AtomicU64,
    fail_every: u64,
}

impl FakeApi {
    pub fn with_overload_every(fail_every: u64) -> Self {
        Self {
            fail_every,
            ..Self::default()
        }
    }

    pub fn user_count(&self) -> usize {
        self.lock().users.len()
    }

    pub fn friendship_count(&self) -> usize {
        self.lock().friends.len()
    }

    pub fn conversation_count(&self) -> usize {
        self.lock().conversations.len()
    }

    pub fn message_count(&self) -> usize {
        self.lock().messages.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enter(&self) -> StepResult<()> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.fail_every > 0 && call.is_multiple_of(self.fail_every) {
            return Err(tonic::Status::resource_exhausted("overloaded").into());
        }
        Ok(())
    }
}

fn pair(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

impl ReplayApi for FakeApi {
    async fn login(&self, username: &str, password: &str) -> StepResult<Session> {
        self.enter()?;
        match self.lock().users.get(username) {
            Some((id, stored)) if stored == password => Ok(Session {
                user_id: *id,
                token: format!("token-{id}"),
            }),
            _ => Err(tonic::Status::unauthenticated("wrong account or password").into()),
        }
    }

    async fn request_code(&self, email: &str) -> StepResult<String> {
        self.enter()?;
        let code = format!("{:06}", email.len());
        self.lock().codes.insert(email.to_owned(), code.clone());
        Ok(code)
    }

    async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        code: &str,
    ) -> StepResult<Session> {
        self.enter()?;
        let mut state = self.lock();
        if state.codes.remove(email).as_deref() != Some(code) {
            return Err(tonic::Status::invalid_argument("code").into());
        }
        if state.users.contains_key(username) {
            return Err(tonic::Status::already_exists("username").into());
        }
        let id = state.next();
        state
            .users
            .insert(username.to_owned(), (id, password.to_owned()));
        Ok(Session {
            user_id: id,
            token: format!("token-{id}"),
        })
    }

    async fn is_friend(&self, user: &Session, friend_id: i64) -> StepResult<bool> {
        self.enter()?;
        Ok(self.lock().friends.contains(&pair(user.user_id, friend_id)))
    }

    async fn send_friend_request(
        &self,
        from: &Session,
        to_user_id: i64,
        _message: &str,
    ) -> StepResult<i64> {
        self.enter()?;
        let mut state = self.lock();
        let pending = state
            .requests
            .values()
            .any(|(f, t, accepted)| *f == from.user_id && *t == to_user_id && !accepted);
        if pending {
            return Err(tonic::Status::already_exists("request pending").into());
        }
        let id = state.next();
        state.requests.insert(id, (from.user_id, to_user_id, false));
        Ok(id)
    }

    async fn pending_request_from(
        &self,
        to: &Session,
        from_user_id: i64,
    ) -> StepResult<Option<i64>> {
        self.enter()?;
        Ok(self
            .lock()
            .requests
            .iter()
            .find(|(_, (f, t, accepted))| *f == from_user_id && *t == to.user_id && !accepted)
            .map(|(id, _)| *id))
    }

    async fn accept_friend_request(&self, to: &Session, request_id: i64) -> StepResult<()> {
        self.enter()?;
        let mut state = self.lock();
        let Some((from, target, accepted)) = state.requests.get_mut(&request_id) else {
            return Err(tonic::Status::not_found("request").into());
        };
        if *target != to.user_id || *accepted {
            return Err(tonic::Status::failed_precondition("handled").into());
        }
        *accepted = true;
        let friends = pair(*from, *target);
        state.friends.push(friends);
        Ok(())
    }

    async fn single_conversation(&self, owner: &Session, peer_id: i64) -> StepResult<i64> {
        self.enter()?;
        let key = pair(owner.user_id, peer_id);
        let mut state = self.lock();
        if !state.friends.contains(&key) {
            return Err(tonic::Status::failed_precondition("not friends").into());
        }
        if let Some(id) = state.conversations.get(&key) {
            return Ok(*id);
        }
        let id = state.next();
        state.conversations.insert(key, id);
        Ok(id)
    }

    async fn send_message(
        &self,
        _sender: &Session,
        _conversation_id: i64,
        text: &str,
        client_message_id: &str,
    ) -> StepResult<i64> {
        self.enter()?;
        if text.trim().is_empty() {
            return Err(StepError::Rpc(tonic::Status::invalid_argument("content")));
        }
        let mut state = self.lock();
        if let Some(id) = state.messages.get(client_message_id) {
            return Ok(*id);
        }
        let id = state.next();
        state.messages.insert(client_message_id.to_owned(), id);
        Ok(id)
    }
}
