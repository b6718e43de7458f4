//! The chitchat corpus: two-person English conversations keyed by a UUID, each a list of turns
//! of `{text, timestamp, sender}` messages.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// One corpus message.
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusMessage {
    pub text: String,
    pub timestamp: DateTime<Utc>,
    pub sender: String,
}

/// One corpus conversation, its turns flattened into messages in file order.
#[derive(Debug, Clone)]
pub struct CorpusConversation {
    pub id: String,
    pub messages: Vec<CorpusMessage>,
}

impl CorpusConversation {
    /// Distinct senders in order of their first message.
    pub fn senders(&self) -> Vec<&str> {
        let mut senders: Vec<&str> = Vec::new();
        for message in &self.messages {
            if !senders.contains(&message.sender.as_str()) {
                senders.push(&message.sender);
            }
        }
        senders
    }

    /// Client message id of the message at `index` (its position in the flattened turns).
    ///
    /// Stable across runs, so a second replay sends the same ids and the service deduplicates.
    pub fn client_message_id(&self, index: usize) -> String {
        format!("chitchat:{}:{index}", self.id)
    }
}

/// The whole corpus, conversations in file order.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub conversations: Vec<CorpusConversation>,
}

impl Corpus {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("failed to parse {}", path.display()))
    }

    /// Parses the corpus JSON, keeping the file order of conversations.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let entries: OrderedEntries = serde_json::from_slice(bytes)?;
        let conversations = entries
            .0
            .into_iter()
            .map(|(id, raw)| CorpusConversation {
                id,
                messages: raw.messages.into_iter().flatten().collect(),
            })
            .collect();
        Ok(Self { conversations })
    }

    /// Keeps only the first `limit` conversations.
    pub fn truncate(&mut self, limit: usize) {
        self.conversations.truncate(limit);
    }

    pub fn message_count(&self) -> usize {
        self.conversations.iter().map(|c| c.messages.len()).sum()
    }
}

/// Environment variable naming the corpus file for tests and examples.
pub const DATASET_VAR: &str = "BEEHIVE_CHITCHAT_DATASET";

/// The chitchat corpus: `BEEHIVE_CHITCHAT_DATASET`, else `shared/data/chitchat/dataset.json`
/// in the folder that contains the repository.
pub fn dataset_path() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os(DATASET_VAR) {
        return path.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/chitchat/dataset.json")
}

#[derive(Deserialize)]
struct RawConversation {
    messages: Vec<Vec<CorpusMessage>>,
}

/// A JSON object read as a list of entries in file order (a map type would sort or hash them).
struct OrderedEntries(Vec<(String, RawConversation)>);

impl<'de> Deserialize<'de> for OrderedEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = OrderedEntries;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object of conversations keyed by id")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, RawConversation>()? {
                    entries.push(entry);
                }
                Ok(OrderedEntries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "c2": {"messages": [[{"text": "hi", "timestamp": "2018-05-02T19:38:15Z", "sender": "b"}],
                            [{"text": "yo", "timestamp": "2018-05-02T19:38:20Z", "sender": "a"},
                             {"text": " ", "timestamp": "2018-05-02T19:38:21Z", "sender": "a"}]],
               "start": "x", "prompt": "", "ratings": {}},
        "c1": {"messages": [[{"text": "alone", "timestamp": "2018-05-03T00:00:00Z", "sender": "a"}]]}
    }"#;

    #[test]
    fn parse_keeps_file_order() {
        let corpus = Corpus::parse(SAMPLE.as_bytes()).unwrap();
        let ids: Vec<&str> = corpus.conversations.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c2", "c1"]);
    }

    #[test]
    fn parse_flattens_turns() {
        let corpus = Corpus::parse(SAMPLE.as_bytes()).unwrap();
        let texts: Vec<&str> = corpus.conversations[0]
            .messages
            .iter()
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(texts, ["hi", "yo", " "]);
        assert_eq!(corpus.message_count(), 4);
        assert_eq!(corpus.conversations[0].senders(), ["b", "a"]);
    }

    #[test]
    fn client_message_id_names_conversation_and_index() {
        let corpus = Corpus::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            corpus.conversations[1].client_message_id(0),
            "chitchat:c1:0"
        );
    }

    #[test]
    fn parse_rejects_bad_timestamp() {
        let bad =
            r#"{"c": {"messages": [[{"text": "x", "timestamp": "yesterday", "sender": "a"}]]}}"#;
        assert!(Corpus::parse(bad.as_bytes()).is_err());
    }
}
