//! Loads the chitchat corpus as search documents, for benchmarks and measurement examples.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use beehive_runtime::search::MessageDocument;

/// Messages in the full corpus, as its README states.
pub const CORPUS_MESSAGES: usize = 258_145;

/// Default corpus location relative to this crate; override with `BEEHIVE_CHITCHAT`.
pub fn corpus_path() -> PathBuf {
    std::env::var_os("BEEHIVE_CHITCHAT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chitchat/dataset.json")
        })
}

/// Reads every message: conversations get ids in file order, senders in order of first
/// appearance, and messages ids in reading order.
pub fn load_documents(path: &Path) -> Vec<MessageDocument> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    let corpus: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("parsing {}: {err}", path.display()));

    let mut senders: HashMap<String, i64> = HashMap::new();
    let mut documents = Vec::with_capacity(CORPUS_MESSAGES);
    for (conversation_index, conversation) in corpus.values().enumerate() {
        let turns = conversation["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for message in turns
            .iter()
            .flat_map(|turn| turn.as_array().cloned().unwrap_or_default())
        {
            let sender = message["sender"].as_str().unwrap_or_default().to_owned();
            let next_sender = senders.len() as i64 + 1;
            let sender_id = *senders.entry(sender).or_insert(next_sender);
            let created_at = message["timestamp"]
                .as_str()
                .and_then(|stamp| chrono::DateTime::parse_from_rfc3339(stamp).ok())
                .map(|stamp| stamp.timestamp())
                .unwrap_or_default();
            documents.push(MessageDocument {
                message_id: documents.len() as i64 + 1,
                conversation_id: conversation_index as i64 + 1,
                sender_id,
                content: message["text"].as_str().unwrap_or_default().to_owned(),
                created_at,
            });
        }
    }
    documents
}

/// Picks `count` search requests: a word of three or more letters from a random message, and
/// a conversation set of `conversations` ids that includes that message's conversation.
pub fn sample_queries(
    documents: &[MessageDocument],
    count: usize,
    conversations: usize,
    seed: u64,
) -> Vec<beehive_runtime::search::SearchQuery> {
    use rand::{Rng, SeedableRng};

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let max_conversation = documents
        .iter()
        .map(|d| d.conversation_id)
        .max()
        .unwrap_or(1);
    let mut queries = Vec::with_capacity(count);
    while queries.len() < count {
        let document = &documents[rng.random_range(0..documents.len())];
        let words: Vec<&str> = document
            .content
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| word.len() >= 3)
            .collect();
        if words.is_empty() {
            continue;
        }
        let keyword = words[rng.random_range(0..words.len())].to_owned();
        let mut conversation_ids = vec![document.conversation_id];
        while conversation_ids.len() < conversations {
            conversation_ids.push(rng.random_range(1..=max_conversation));
        }
        queries.push(beehive_runtime::search::SearchQuery {
            keyword,
            conversation_ids,
            page: 1,
            page_size: 20,
        });
    }
    queries
}
