//! Measures SearchMessages latency over the chitchat corpus indexed through the service.
//!
//! ```text
//! cargo run --release -p beehive-search --example search_latency -- PATH/TO/chitchat/dataset.json [QUERIES]
//! ```
//!
//! The chat and search services run in this process on 127.0.0.1, with SQLite and a tantivy
//! index in a temp directory; the friend service, user service and message counters that the chat service calls
//! are stand-ins. Every two-person corpus conversation becomes a single chat (one-sender ones are
//! paired with an extra user), every message is sent through IndexMessage over gRPC, and then
//! QUERIES searches run one at a time, each by a member of the conversation its keyword was
//! taken from, over all of that member's conversations.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use beehive_chat::{ChatDeps, ChatService, Friends, MessageStats, Users};
use beehive_generated::MessageLimits;
use beehive_generated::chat::ChatClient;
use beehive_generated::migration::ChatMigrator;
use beehive_generated::pb::chat::CreateConversationRequest;
use beehive_generated::pb::message::ConversationStats;
use beehive_generated::pb::search::{IndexMessageRequest, SearchMessagesRequest};
use beehive_generated::search::SearchClient;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, PoolOptions};
use beehive_runtime::search::{SearchEngine, TantivyEngine};
use beehive_runtime::server::ServerBuilder;
use beehive_runtime::{CallContext, ServiceError};
use beehive_search::{SearchDeps, SearchService};
use futures::StreamExt;
use serde::Deserialize;

const DEFAULT_QUERIES: usize = 2_000;
const CALLS_IN_FLIGHT: usize = 32;
const MIN_KEYWORD_CHARS: usize = 4;

#[derive(Deserialize)]
struct Conversation {
    messages: Vec<Vec<Turn>>,
}

#[derive(Deserialize)]
struct Turn {
    text: String,
    timestamp: String,
    sender: String,
}

/// A corpus message ready to index.
struct Message {
    conversation: usize,
    sender: i64,
    text: String,
    created_at: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dataset = args
        .next()
        .context("usage: search_latency DATASET_JSON [QUERIES]")?;
    let queries: usize = args.next().map_or(Ok(DEFAULT_QUERIES), |arg| arg.parse())?;

    let corpus: HashMap<String, Conversation> =
        serde_json::from_slice(&std::fs::read(&dataset).context("read the dataset")?)?;
    let mut keys: Vec<&String> = corpus.keys().collect();
    keys.sort();
    let mut users: HashMap<String, i64> = HashMap::new();
    let mut pairs = Vec::new();
    let mut messages = Vec::new();
    for key in keys {
        let conversation = &corpus[key];
        let mut senders = Vec::new();
        for turn in conversation.messages.iter().flatten() {
            let next_id = users.len() as i64 + 1;
            let id = *users.entry(turn.sender.clone()).or_insert(next_id);
            if !senders.contains(&id) {
                senders.push(id);
            }
            let created_at = chrono::DateTime::parse_from_rfc3339(&turn.timestamp)
                .map(|time| time.timestamp())
                .unwrap_or_default();
            if !turn.text.trim().is_empty() {
                messages.push(Message {
                    conversation: pairs.len(),
                    sender: id,
                    text: turn.text.clone(),
                    created_at,
                });
            }
        }
        pairs.push(senders);
    }
    let partner = users.len() as i64 + 1;
    for senders in &mut pairs {
        if senders.len() < 2 {
            senders.push(partner);
        }
    }
    println!(
        "corpus: {} conversations, {} messages, {} users",
        pairs.len(),
        messages.len(),
        users.len() + 1
    );

    let work = tempfile::tempdir()?;
    let config = Arc::new(Config {
        data_dir: work.path().to_owned(),
        ..Config::default()
    });
    let limits = MessageLimits::both(config.max_message_bytes());
    let auth = Authenticator::from_config(&config.auth)?;
    let service_token = auth.issue_service_token()?;
    let database = db::connect(
        &format!("sqlite://{}", work.path().join("chat.db").display()),
        &PoolOptions::default(),
    )
    .await?;
    database.migrate::<ChatMigrator>().await?;
    let chat_logic = ChatService::new(ChatDeps {
        db: database.connection.clone(),
        config: config.chat.clone(),
        friends: Arc::new(EveryoneFriends),
        users: Arc::new(EveryoneExists),
        stats: Arc::new(NoStats),
    });
    let chat_server = ServerBuilder::new(Arc::clone(&config), "chat")
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .add_service(beehive_generated::chat::server(
            Arc::new(chat_logic),
            limits,
        ))
        .start()
        .await?;
    let chat = ChatClient::with_limits(
        ServiceChannel::lazy(&format!("http://{}", chat_server.local_addr()))?,
        limits,
    );
    let engine: Arc<dyn SearchEngine> = Arc::new(TantivyEngine::open(work.path().join("search"))?);
    let search_logic = SearchService::new(SearchDeps {
        config: config.search.clone(),
        engine: Arc::clone(&engine),
        chat: chat.clone(),
        service_token: Some(service_token.clone()),
    });
    let search_server = ServerBuilder::new(Arc::clone(&config), "search")
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .add_service(beehive_generated::search::server(
            Arc::new(search_logic),
            limits,
        ))
        .start()
        .await?;
    let search = SearchClient::with_limits(
        ServiceChannel::lazy(&format!("http://{}", search_server.local_addr()))?,
        limits,
    );

    let started = Instant::now();
    let creates = futures::stream::iter(pairs.iter()).map(|senders| {
        let chat = chat.clone();
        let request = CreateConversationRequest {
            r#type: 1,
            name: String::new(),
            owner_id: senders[0],
            member_ids: vec![senders[1]],
        };
        let token = service_token.clone();
        async move {
            chat.create_conversation(authorized(&token, request))
                .await
                .map(|response| response.conversation_id)
        }
    });
    let conversation_ids: Vec<i64> = creates
        .buffered(CALLS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    println!(
        "created {} conversations in {:.1} s",
        conversation_ids.len(),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let indexes = futures::stream::iter(messages.iter().enumerate()).map(|(index, message)| {
        let search = search.clone();
        let request = IndexMessageRequest {
            message_id: index as i64 + 1,
            conversation_id: conversation_ids[message.conversation],
            sender_id: message.sender,
            content: message.text.clone(),
            created_at: message.created_at,
        };
        let token = service_token.clone();
        async move { search.index_message(authorized(&token, request)).await }
    });
    let mut failed = 0usize;
    let mut stream = indexes.buffer_unordered(CALLS_IN_FLIGHT);
    while let Some(result) = stream.next().await {
        if result.is_err() {
            failed += 1;
        }
    }
    engine.refresh().await?;
    let indexing = started.elapsed();
    println!(
        "indexed {} messages through IndexMessage in {:.1} s ({:.0} messages/s), {failed} failed",
        messages.len(),
        indexing.as_secs_f64(),
        messages.len() as f64 / indexing.as_secs_f64()
    );

    let plan = query_plan(&messages, &pairs, queries);
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut hits = 0i64;
    let mut empty = 0usize;
    for (keyword, user_id) in &plan {
        let token = auth.issue_user_token(*user_id)?;
        let request = SearchMessagesRequest {
            keyword: keyword.clone(),
            user_id: *user_id,
            ..SearchMessagesRequest::default()
        };
        let started = Instant::now();
        let response = search.search_messages(authorized(&token, request)).await?;
        histogram.record(started.elapsed().as_micros() as u64)?;
        hits += response.total;
        if response.total == 0 {
            empty += 1;
        }
    }
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{} searches, one at a time: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; mean total {:.0}, {empty} with no hit",
        histogram.len(),
        ms(0.50),
        ms(0.90),
        ms(0.99),
        histogram.max() as f64 / 1000.0,
        hits as f64 / plan.len().max(1) as f64
    );

    search_server.shutdown().await?;
    chat_server.shutdown().await?;
    Ok(())
}

/// Picks `count` keywords spread over the corpus: the longest word of a message, searched by
/// that message's sender or partner.
fn query_plan(messages: &[Message], pairs: &[Vec<i64>], count: usize) -> Vec<(String, i64)> {
    let step = (messages.len() / count.max(1)).max(1);
    let mut seen = HashSet::new();
    let mut plan = Vec::new();
    for (index, message) in messages.iter().enumerate().step_by(step) {
        let word = message
            .text
            .split(|c: char| !c.is_alphabetic())
            .filter(|word| word.chars().count() >= MIN_KEYWORD_CHARS)
            .max_by_key(|word| word.len());
        let Some(word) = word else {
            continue;
        };
        let members = &pairs[message.conversation];
        let user = members[index % members.len()];
        if seen.insert((word.to_lowercase(), user)) {
            plan.push((word.to_lowercase(), user));
        }
        if plan.len() == count {
            break;
        }
    }
    plan
}

fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(30));
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Stand-in for the friend service: every pair of users are friends.
struct EveryoneFriends;

#[async_trait]
impl Friends for EveryoneFriends {
    async fn are_friends(&self, _: &CallContext, _: i64, _: i64) -> Result<bool, ServiceError> {
        Ok(true)
    }
}

/// Stand-in for the user service: every user exists.
struct EveryoneExists;

#[async_trait]
impl Users for EveryoneExists {
    async fn existing(
        &self,
        _: &CallContext,
        user_ids: &[i64],
    ) -> Result<HashSet<i64>, ServiceError> {
        Ok(user_ids.iter().copied().collect())
    }
}

/// Stand-in for the message service's counters: no conversation has messages.
struct NoStats;

#[async_trait]
impl MessageStats for NoStats {
    async fn stats(
        &self,
        _: &CallContext,
        _: i64,
        conversation_ids: &[i64],
    ) -> Result<Vec<ConversationStats>, ServiceError> {
        Ok(conversation_ids
            .iter()
            .map(|&conversation_id| ConversationStats {
                conversation_id,
                ..ConversationStats::default()
            })
            .collect())
    }
}
