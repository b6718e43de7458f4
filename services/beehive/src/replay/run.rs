//! Executes a [`ReplayPlan`] against a [`ReplayApi`], phase by phase: users, friendships,
//! conversations, messages. Every step first looks for what an earlier run created, so a second
//! run creates nothing new.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

use super::api::{ReplayApi, Session, StepError, StepResult};
use super::plan::{PlanCounts, PlannedChat, ReplayPlan};
use crate::stats::CallStats;

/// Attempts of one step when the service reports overload or unavailability.
const MAX_ATTEMPTS: u32 = 6;
/// Wait before the second attempt; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Text of the friend requests a replay sends.
const FRIEND_REQUEST_MESSAGE: &str = "replayed from the chitchat corpus";

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Steps in flight at once within a phase.
    pub concurrency: usize,
    /// Draws progress bars on standard error.
    pub progress: bool,
}

/// Outcome of one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseSummary {
    /// Entities this run created.
    pub created: u64,
    /// Entities an earlier run had created.
    pub existing: u64,
    /// Failed steps by gRPC code name (or `OUTBOX`, `PREREQUISITE_FAILED`).
    pub failed: BTreeMap<String, u64>,
    pub seconds: f64,
}

impl PhaseSummary {
    fn fail(&mut self, kind: String) {
        *self.failed.entry(kind).or_default() += 1;
    }

    pub fn failed_count(&self) -> u64 {
        self.failed.values().sum()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageSummary {
    /// Successful SendMessage calls, first sends and deduplicated repeats alike.
    pub sent: u64,
    /// Messages not sent, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Failed sends by gRPC code name (or `PREREQUISITE_FAILED`).
    pub failed: BTreeMap<String, u64>,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl MessageSummary {
    pub fn skipped_count(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn failed_count(&self) -> u64 {
        self.failed.values().sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub expected: PlanCountsSummary,
    /// Created means registered; existing means logged in.
    pub users: PhaseSummary,
    pub friendships: PhaseSummary,
    /// The service returns an existing single conversation's id, so every ready conversation
    /// counts as created.
    pub conversations: PhaseSummary,
    pub messages: MessageSummary,
    /// Steps tried again after RESOURCE_EXHAUSTED, UNAVAILABLE or DEADLINE_EXCEEDED.
    pub retries: u64,
    pub total_seconds: f64,
    /// User id per planned user.
    #[serde(skip)]
    pub user_ids: Vec<Option<i64>>,
    /// Conversation id per planned chat.
    #[serde(skip)]
    pub conversation_ids: Vec<Option<i64>>,
    /// Message id per planned message, chat by chat.
    #[serde(skip)]
    pub message_ids: Vec<Vec<Option<i64>>>,
}

/// [`PlanCounts`] in serializable form.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCountsSummary {
    pub corpus_conversations: usize,
    pub corpus_messages: usize,
    pub users: usize,
    pub partners: usize,
    pub friendships: usize,
    pub conversations: usize,
    pub messages: usize,
    pub skipped: usize,
}

impl From<PlanCounts> for PlanCountsSummary {
    fn from(counts: PlanCounts) -> Self {
        Self {
            corpus_conversations: counts.corpus_conversations,
            corpus_messages: counts.corpus_messages,
            users: counts.users,
            partners: counts.partners,
            friendships: counts.friendships,
            conversations: counts.conversations,
            messages: counts.messages,
            skipped: counts.skipped,
        }
    }
}

/// Runs every phase of `plan` and returns what happened.
pub async fn replay<A: ReplayApi>(
    api: Arc<A>,
    plan: Arc<ReplayPlan>,
    options: &ReplayOptions,
) -> ReplaySummary {
    let started = Instant::now();
    let bars = if options.progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let retries = Arc::new(AtomicU64::new(0));
    let concurrency = options.concurrency.max(1);
    let runner = Runner {
        api,
        plan: Arc::clone(&plan),
        retries: Arc::clone(&retries),
    };

    let (sessions, users) = runner.users(&bars, concurrency).await;
    let sessions = Arc::new(sessions);
    let friendships = runner.friendships(&bars, concurrency, &sessions).await;
    let (conversation_ids, conversations) = runner
        .conversations(&bars, concurrency, &sessions, &friendships.1)
        .await;
    let (message_ids, messages) = runner
        .messages(&bars, concurrency, &sessions, &conversation_ids)
        .await;

    ReplaySummary {
        expected: plan.counts().into(),
        users,
        friendships: friendships.0,
        conversations,
        messages,
        retries: retries.load(Ordering::Relaxed),
        total_seconds: started.elapsed().as_secs_f64(),
        user_ids: sessions
            .iter()
            .map(|session| session.as_ref().map(|s| s.user_id))
            .collect(),
        conversation_ids,
        message_ids,
    }
}

struct Runner<A> {
    api: Arc<A>,
    plan: Arc<ReplayPlan>,
    retries: Arc<AtomicU64>,
}

/// How a successful step ended: it created something, or found it already there.
enum Outcome<T> {
    Created(T),
    Existing(T),
}

impl<A: ReplayApi> Runner<A> {
    /// Logs every planned user in, registering those that do not exist yet.
    async fn users(
        &self,
        bars: &MultiProgress,
        concurrency: usize,
    ) -> (Vec<Option<Session>>, PhaseSummary) {
        let started = Instant::now();
        let bar = phase_bar(bars, "users", self.plan.users.len());
        let results: Vec<(usize, StepResult<Outcome<Session>>)> =
            futures::stream::iter(0..self.plan.users.len())
                .map(|index| {
                    let bar = bar.clone();
                    async move {
                        let result = self.user(index).await;
                        bar.inc(1);
                        (index, result)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        bar.finish();

        let mut sessions = vec![None; self.plan.users.len()];
        let mut summary = PhaseSummary::default();
        for (index, result) in results {
            match result {
                Ok(Outcome::Created(session)) => {
                    summary.created += 1;
                    sessions[index] = Some(session);
                }
                Ok(Outcome::Existing(session)) => {
                    summary.existing += 1;
                    sessions[index] = Some(session);
                }
                Err(err) => {
                    let user = &self.plan.users[index];
                    tracing::warn!(username = %user.username, error = %err, "user step failed");
                    summary.fail(err.kind());
                }
            }
        }
        summary.seconds = started.elapsed().as_secs_f64();
        (sessions, summary)
    }

    async fn user(&self, index: usize) -> StepResult<Outcome<Session>> {
        let user = &self.plan.users[index];
        match self
            .retry(|| self.api.login(&user.username, &user.password))
            .await
        {
            Ok(session) => return Ok(Outcome::Existing(session)),
            Err(StepError::Rpc(status)) if status.code() == tonic::Code::Unauthenticated => {}
            Err(err) => return Err(err),
        }
        let code = self.retry(|| self.api.request_code(&user.email)).await?;
        let registered = self
            .retry(|| {
                self.api
                    .register(&user.username, &user.email, &user.password, &code)
            })
            .await;
        match registered {
            Ok(session) => Ok(Outcome::Created(session)),
            // A retried Register whose first attempt committed finds the user taken.
            Err(StepError::Rpc(status)) if status.code() == tonic::Code::AlreadyExists => {
                let session = self
                    .retry(|| self.api.login(&user.username, &user.password))
                    .await?;
                Ok(Outcome::Created(session))
            }
            Err(err) => Err(err),
        }
    }

    /// Makes the two users of every chat friends. Returns per chat whether they are friends now.
    async fn friendships(
        &self,
        bars: &MultiProgress,
        concurrency: usize,
        sessions: &Arc<Vec<Option<Session>>>,
    ) -> (PhaseSummary, Vec<bool>) {
        let started = Instant::now();
        let bar = phase_bar(bars, "friendships", self.plan.chats.len());
        let results: Vec<(usize, StepResult<Outcome<()>>)> =
            futures::stream::iter(0..self.plan.chats.len())
                .map(|index| {
                    let bar = bar.clone();
                    async move {
                        let result = self.friendship(&self.plan.chats[index], sessions).await;
                        bar.inc(1);
                        (index, result)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        bar.finish();

        let mut friends = vec![false; self.plan.chats.len()];
        let mut summary = PhaseSummary::default();
        for (index, result) in results {
            match result {
                Ok(Outcome::Created(())) => {
                    summary.created += 1;
                    friends[index] = true;
                }
                Ok(Outcome::Existing(())) => {
                    summary.existing += 1;
                    friends[index] = true;
                }
                Err(err) => {
                    tracing::warn!(chat = index, error = %err, "friendship step failed");
                    summary.fail(err.kind());
                }
            }
        }
        summary.seconds = started.elapsed().as_secs_f64();
        (summary, friends)
    }

    async fn friendship(
        &self,
        chat: &PlannedChat,
        sessions: &[Option<Session>],
    ) -> StepResult<Outcome<()>> {
        let (Some(requester), Some(accepter)) =
            (&sessions[chat.requester], &sessions[chat.accepter])
        else {
            return Err(StepError::PrerequisiteFailed);
        };
        if self
            .retry(|| self.api.is_friend(requester, accepter.user_id))
            .await?
        {
            return Ok(Outcome::Existing(()));
        }
        let request_id = match self
            .retry(|| {
                self.api
                    .send_friend_request(requester, accepter.user_id, FRIEND_REQUEST_MESSAGE)
            })
            .await
        {
            Ok(request_id) => request_id,
            Err(err) => {
                // An interrupted run may have left a pending request behind.
                let pending = self
                    .retry(|| self.api.pending_request_from(accepter, requester.user_id))
                    .await?;
                pending.ok_or(err)?
            }
        };
        let accepted = self
            .retry(|| self.api.accept_friend_request(accepter, request_id))
            .await;
        if let Err(err) = accepted {
            // A retried accept whose first attempt committed finds the request handled.
            let friends = self
                .retry(|| self.api.is_friend(requester, accepter.user_id))
                .await?;
            if !friends {
                return Err(err);
            }
        }
        Ok(Outcome::Created(()))
    }

    async fn conversations(
        &self,
        bars: &MultiProgress,
        concurrency: usize,
        sessions: &Arc<Vec<Option<Session>>>,
        friends: &[bool],
    ) -> (Vec<Option<i64>>, PhaseSummary) {
        let started = Instant::now();
        let bar = phase_bar(bars, "conversations", self.plan.chats.len());
        let results: Vec<(usize, StepResult<i64>)> =
            futures::stream::iter(0..self.plan.chats.len())
                .map(|index| {
                    let bar = bar.clone();
                    async move {
                        let chat = &self.plan.chats[index];
                        let result = match (
                            friends[index],
                            &sessions[chat.requester],
                            &sessions[chat.accepter],
                        ) {
                            (true, Some(owner), Some(peer)) => {
                                self.retry(|| self.api.single_conversation(owner, peer.user_id))
                                    .await
                            }
                            _ => Err(StepError::PrerequisiteFailed),
                        };
                        bar.inc(1);
                        (index, result)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        bar.finish();

        let mut ids = vec![None; self.plan.chats.len()];
        let mut summary = PhaseSummary::default();
        for (index, result) in results {
            match result {
                Ok(id) => {
                    summary.created += 1;
                    ids[index] = Some(id);
                }
                Err(err) => {
                    tracing::warn!(chat = index, error = %err, "conversation step failed");
                    summary.fail(err.kind());
                }
            }
        }
        summary.seconds = started.elapsed().as_secs_f64();
        (ids, summary)
    }

    /// Sends every chat's messages in order; chats run concurrently.
    async fn messages(
        &self,
        bars: &MultiProgress,
        concurrency: usize,
        sessions: &Arc<Vec<Option<Session>>>,
        conversation_ids: &[Option<i64>],
    ) -> (Vec<Vec<Option<i64>>>, MessageSummary) {
        let started = Instant::now();
        let total: usize = self.plan.chats.iter().map(|chat| chat.messages.len()).sum();
        let bar = phase_bar(bars, "messages", total);
        let results: Vec<(usize, ChatMessages)> = futures::stream::iter(0..self.plan.chats.len())
            .map(|index| {
                let bar = bar.clone();
                async move {
                    let result = self
                        .chat_messages(index, sessions, conversation_ids[index], &bar)
                        .await;
                    (index, result)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        bar.finish();
        let seconds = started.elapsed().as_secs_f64();

        let mut ids = vec![Vec::new(); self.plan.chats.len()];
        let mut latencies = CallStats::new();
        let mut summary = MessageSummary::default();
        for (index, result) in results {
            summary.sent += result.sent;
            for (kind, count) in result.failed {
                *summary.failed.entry(kind).or_default() += count;
            }
            latencies.merge(&result.latencies);
            ids[index] = result.ids;
        }
        for skipped in &self.plan.skipped {
            *summary
                .skipped
                .entry(skipped.reason.describe().to_owned())
                .or_default() += 1;
        }
        summary.seconds = seconds;
        summary.per_second = if seconds > 0.0 {
            summary.sent as f64 / seconds
        } else {
            0.0
        };
        summary.p50_ms = latencies.quantile(0.50).as_secs_f64() * 1e3;
        summary.p99_ms = latencies.quantile(0.99).as_secs_f64() * 1e3;
        (ids, summary)
    }

    async fn chat_messages(
        &self,
        index: usize,
        sessions: &[Option<Session>],
        conversation_id: Option<i64>,
        bar: &ProgressBar,
    ) -> ChatMessages {
        let chat = &self.plan.chats[index];
        let mut result = ChatMessages {
            ids: Vec::with_capacity(chat.messages.len()),
            sent: 0,
            failed: BTreeMap::new(),
            latencies: CallStats::new(),
        };
        for message in &chat.messages {
            let outcome = match (conversation_id, &sessions[message.sender]) {
                (Some(conversation_id), Some(sender)) => {
                    let sent_at = Instant::now();
                    let outcome = self
                        .retry(|| {
                            self.api.send_message(
                                sender,
                                conversation_id,
                                &message.text,
                                &message.client_message_id,
                            )
                        })
                        .await;
                    if outcome.is_ok() {
                        result.latencies.record_ok(sent_at.elapsed());
                    }
                    outcome
                }
                _ => Err(StepError::PrerequisiteFailed),
            };
            match outcome {
                Ok(id) => {
                    result.sent += 1;
                    result.ids.push(Some(id));
                }
                Err(err) => {
                    if !matches!(err, StepError::PrerequisiteFailed) {
                        tracing::warn!(
                            client_message_id = %message.client_message_id,
                            error = %err,
                            "send failed"
                        );
                    }
                    *result.failed.entry(err.kind()).or_default() += 1;
                    result.ids.push(None);
                }
            }
            bar.inc(1);
        }
        result
    }

    /// Runs `step`, trying again with exponential backoff while it fails transiently.
    async fn retry<T, F, Fut>(&self, mut step: F) -> StepResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = StepResult<T>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match step().await {
                Err(err) if err.is_transient() && attempt < MAX_ATTEMPTS => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(attempt, error = %err, "transient failure, trying again");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

struct ChatMessages {
    ids: Vec<Option<i64>>,
    sent: u64,
    failed: BTreeMap<String, u64>,
    latencies: CallStats,
}

fn phase_bar(bars: &MultiProgress, phase: &str, length: usize) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(length as u64));
    let style =
        ProgressStyle::with_template("{prefix:>13} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(phase.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;
    use crate::replay::fake::FakeApi;

    const SAMPLE: &str = r#"{
        "c1": {"messages": [[{"text": "hi", "timestamp": "2018-05-02T10:00:00Z", "sender": "aaaa"}],
                            [{"text": "yo", "timestamp": "2018-05-02T10:00:05Z", "sender": "bbbb"},
                             {"text": "  ", "timestamp": "2018-05-02T10:00:06Z", "sender": "bbbb"}]]},
        "c2": {"messages": [[{"text": "alone", "timestamp": "2018-05-02T09:00:00Z", "sender": "aaaa"},
                             {"text": "still alone", "timestamp": "2018-05-02T09:00:01Z", "sender": "aaaa"}]]},
        "c3": {"messages": [[{"text": "again", "timestamp": "2018-05-01T08:00:00Z", "sender": "bbbb"}],
                            [{"text": "sure", "timestamp": "2018-05-01T08:00:01Z", "sender": "cccc"}]]}
    }"#;

    fn plan() -> Arc<ReplayPlan> {
        Arc::new(ReplayPlan::build(
            &Corpus::parse(SAMPLE.as_bytes()).unwrap(),
        ))
    }

    fn options() -> ReplayOptions {
        ReplayOptions {
            concurrency: 4,
            progress: false,
        }
    }

    #[tokio::test]
    async fn first_run_creates_everything() {
        let api = Arc::new(FakeApi::default());
        let summary = replay(Arc::clone(&api), plan(), &options()).await;

        assert_eq!(summary.users.created, 4);
        assert_eq!(summary.users.existing, 0);
        assert_eq!(summary.friendships.created, 3);
        assert_eq!(summary.conversations.created, 3);
        assert_eq!(summary.messages.sent, 6);
        assert_eq!(summary.messages.skipped_count(), 1);
        assert_eq!(summary.messages.failed_count(), 0);
        assert_eq!(api.user_count(), 4);
        assert_eq!(api.friendship_count(), 3);
        assert_eq!(api.conversation_count(), 3);
        assert_eq!(api.message_count(), 6);
    }

    #[tokio::test]
    async fn second_run_creates_nothing() {
        let api = Arc::new(FakeApi::default());
        let first = replay(Arc::clone(&api), plan(), &options()).await;
        let second = replay(Arc::clone(&api), plan(), &options()).await;

        assert_eq!(second.users.created, 0);
        assert_eq!(second.users.existing, 4);
        assert_eq!(second.friendships.created, 0);
        assert_eq!(second.friendships.existing, 3);
        assert_eq!(second.user_ids, first.user_ids);
        assert_eq!(second.conversation_ids, first.conversation_ids);
        assert_eq!(second.message_ids, first.message_ids);
        assert_eq!(api.user_count(), 4);
        assert_eq!(api.friendship_count(), 3);
        assert_eq!(api.message_count(), 6);
    }

    #[tokio::test]
    async fn overload_is_retried() {
        let api = Arc::new(FakeApi::with_overload_every(3));
        let summary = replay(Arc::clone(&api), plan(), &options()).await;

        assert!(summary.retries > 0);
        assert_eq!(summary.users.failed_count(), 0);
        assert_eq!(summary.friendships.failed_count(), 0);
        assert_eq!(summary.messages.sent, 6);
        assert_eq!(api.message_count(), 6);
    }

    #[tokio::test]
    async fn sent_skipped_failed_add_up() {
        let api = Arc::new(FakeApi::default());
        let summary = replay(api, plan(), &options()).await;
        let accounted = summary.messages.sent
            + summary.messages.skipped_count()
            + summary.messages.failed_count();
        assert_eq!(accounted, summary.expected.corpus_messages as u64);
    }
}
