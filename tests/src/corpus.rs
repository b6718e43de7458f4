//! Expected replay counts, computed from the chitchat JSON directly, without the replay's own
//! parser or plan, so a test compares two independent derivations.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What a replay of the first `limit` conversations must create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub conversations: usize,
    pub messages: usize,
    /// Distinct senders plus one silent partner per conversation with a single sender.
    pub users: usize,
    /// Distinct pairs of senders who talked plus one per single-sender conversation; each
    /// friendship has exactly one single conversation.
    pub friendships: usize,
    /// Messages with non-blank text.
    pub sendable: usize,
    /// Messages whose text is empty or white space only.
    pub blank: usize,
}

/// The chitchat corpus: `BEEHIVE_CHITCHAT_DATASET`, else `shared/data/chitchat/dataset.json` in
/// the folder that contains the repository.
pub fn dataset_path() -> PathBuf {
    if let Some(path) = std::env::var_os("BEEHIVE_CHITCHAT_DATASET") {
        return path.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chitchat/dataset.json")
}

/// Reads the corpus; `None` (after a line saying so) when it is missing outside CI.
pub fn dataset_text() -> Option<String> {
    let path = dataset_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipped: chitchat corpus unreadable at {}: {err}",
                path.display()
            );
            None
        }
        Err(err) => panic!("chitchat corpus unreadable at {}: {err}", path.display()),
    }
}

/// Computes the counts for the first `limit` conversations in file order.
pub fn expected(json: &str, limit: usize) -> anyhow::Result<Expected> {
    let ordered = conversation_ids_in_file_order(json)?;
    let value: Value = serde_json::from_str(json)?;
    let object = value
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("corpus is not a JSON object"))?;

    let mut senders: HashSet<String> = HashSet::new();
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut single_sender = 0;
    let mut messages = 0;
    let mut blank = 0;
    for id in ordered.iter().take(limit) {
        let turns = object[id.as_str()]["messages"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("conversation {id} has no messages list"))?;
        let mut these: BTreeSet<String> = BTreeSet::new();
        for message in turns.iter().filter_map(Value::as_array).flatten() {
            messages += 1;
            let text = message["text"].as_str().unwrap_or_default();
            if text.trim().is_empty() {
                blank += 1;
            }
            if let Some(sender) = message["sender"].as_str() {
                these.insert(sender.to_owned());
            }
        }
        match these.len() {
            1 => single_sender += 1,
            2 => {
                let mut both = these.iter().cloned();
                if let (Some(a), Some(b)) = (both.next(), both.next()) {
                    pairs.insert((a, b));
                }
            }
            count => anyhow::bail!("conversation {id} has {count} senders"),
        }
        senders.extend(these);
    }
    Ok(Expected {
        conversations: ordered.len().min(limit),
        messages,
        users: senders.len() + single_sender,
        friendships: pairs.len() + single_sender,
        sendable: messages - blank,
        blank,
    })
}

/// The top-level keys in file order: serde_json's map sorts them, so read them off a stream.
fn conversation_ids_in_file_order(json: &str) -> anyhow::Result<Vec<String>> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(json);
    Ok((&mut deserializer).deserialize_map(Keys)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_on_sample() {
        let json = r#"{
            "z": {"messages": [[{"text": "a", "sender": "s1"}], [{"text": " ", "sender": "s2"}]]},
            "y": {"messages": [[{"text": "b", "sender": "s1"}]]},
            "x": {"messages": [[{"text": "c", "sender": "s2"}, {"text": "d", "sender": "s1"}]]}
        }"#;
        let all = expected(json, 10).unwrap();
        assert_eq!(all.conversations, 3);
        assert_eq!(all.messages, 5);
        assert_eq!(all.users, 3);
        assert_eq!(all.friendships, 2);
        assert_eq!(all.blank, 1);
        assert_eq!(all.sendable, 4);

        let first = expected(json, 1).unwrap();
        assert_eq!(first.users, 2);
        assert_eq!(first.friendships, 1);
    }
}
