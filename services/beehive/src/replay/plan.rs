//! What a replay creates, derived from the corpus alone: users, friendships with one single
//! conversation each, and the messages to send, in order.
//!
//! Mapping:
//! - Every corpus sender becomes one user, whatever the number of conversations it is in.
//! - Two senders who talked become friends, and all their corpus conversations share the one
//!   single conversation a pair of users can have. Its messages merge in timestamp order (ties
//!   keep corpus order).
//! - A conversation in which only one person wrote gets a partner user of its own, named after
//!   the conversation, who befriends the sender and never writes. The messages keep their own
//!   conversation instead of merging into one shared with every other lone writer.
//! - Texts that are empty or white space only are skipped, because the service rejects empty
//!   content.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::corpus::Corpus;

/// Domain of every replayed user's email address.
pub const EMAIL_DOMAIN: &str = "replay.beehive.test";

const SENDER_PREFIX: &str = "cc-";
const PARTNER_PREFIX: &str = "cc-partner-";

/// Index of a user in [`ReplayPlan::users`].
pub type UserIndex = usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOrigin {
    /// A corpus sender, by its UUID.
    Sender(String),
    /// The silent partner of a conversation in which only one person wrote.
    Partner { conversation_id: String },
}

#[derive(Debug, Clone)]
pub struct PlannedUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub origin: UserOrigin,
}

impl PlannedUser {
    fn new(username: String, origin: UserOrigin) -> Self {
        let email = format!("{username}@{EMAIL_DOMAIN}");
        let password = password_for(&username);
        Self {
            username,
            email,
            password,
            origin,
        }
    }
}

/// A friendship and its single conversation.
#[derive(Debug, Clone)]
pub struct PlannedChat {
    /// Sends the friend request and owns the conversation: whoever wrote first.
    pub requester: UserIndex,
    /// Accepts the request.
    pub accepter: UserIndex,
    /// Corpus conversations whose messages land in this chat, in corpus order.
    pub corpus_conversations: Vec<String>,
    /// Messages to send, in the order to send them.
    pub messages: Vec<PlannedMessage>,
}

#[derive(Debug, Clone)]
pub struct PlannedMessage {
    pub sender: UserIndex,
    pub text: String,
    pub client_message_id: String,
    pub timestamp: DateTime<Utc>,
}

/// Why a corpus message is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Empty or white space only: the service rejects empty content.
    EmptyText,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::EmptyText => "empty or white-space-only text",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SkippedMessage {
    pub client_message_id: String,
    pub reason: SkipReason,
}

/// Counts a replay of the plan must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanCounts {
    pub corpus_conversations: usize,
    pub corpus_messages: usize,
    pub users: usize,
    pub senders: usize,
    pub partners: usize,
    pub friendships: usize,
    pub conversations: usize,
    pub messages: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub users: Vec<PlannedUser>,
    pub chats: Vec<PlannedChat>,
    pub skipped: Vec<SkippedMessage>,
    pub corpus_conversations: usize,
    pub corpus_messages: usize,
}

impl ReplayPlan {
    pub fn build(corpus: &Corpus) -> Self {
        let mut users: Vec<PlannedUser> = Vec::new();
        let mut user_by_sender: HashMap<&str, UserIndex> = HashMap::new();
        let mut chats: Vec<PlannedChat> = Vec::new();
        let mut chat_by_pair: HashMap<(UserIndex, UserIndex), usize> = HashMap::new();
        let mut skipped = Vec::new();

        for conversation in &corpus.conversations {
            let senders = conversation.senders();
            let mut participants: Vec<UserIndex> = Vec::with_capacity(2);
            for sender in &senders {
                let index = *user_by_sender.entry(sender).or_insert_with(|| {
                    let username = format!("{SENDER_PREFIX}{sender}");
                    users.push(PlannedUser::new(
                        username,
                        UserOrigin::Sender((*sender).to_owned()),
                    ));
                    users.len() - 1
                });
                participants.push(index);
            }

            let chat_index = match participants.as_slice() {
                [only] => {
                    let username = format!("{PARTNER_PREFIX}{}", conversation.id);
                    users.push(PlannedUser::new(
                        username,
                        UserOrigin::Partner {
                            conversation_id: conversation.id.clone(),
                        },
                    ));
                    chats.push(PlannedChat::new(*only, users.len() - 1));
                    chats.len() - 1
                }
                [first, second, ..] => {
                    let key = ((*first).min(*second), (*first).max(*second));
                    *chat_by_pair.entry(key).or_insert_with(|| {
                        chats.push(PlannedChat::new(*first, *second));
                        chats.len() - 1
                    })
                }
                [] => continue,
            };

            let chat = &mut chats[chat_index];
            chat.corpus_conversations.push(conversation.id.clone());
            for (index, message) in conversation.messages.iter().enumerate() {
                let client_message_id = conversation.client_message_id(index);
                if message.text.trim().is_empty() {
                    skipped.push(SkippedMessage {
                        client_message_id,
                        reason: SkipReason::EmptyText,
                    });
                    continue;
                }
                chat.messages.push(PlannedMessage {
                    sender: user_by_sender[message.sender.as_str()],
                    text: message.text.clone(),
                    client_message_id,
                    timestamp: message.timestamp,
                });
            }
        }

        for chat in &mut chats {
            // Stable: equal timestamps keep corpus order.
            chat.messages.sort_by_key(|message| message.timestamp);
        }

        Self {
            users,
            chats,
            skipped,
            corpus_conversations: corpus.conversations.len(),
            corpus_messages: corpus.message_count(),
        }
    }

    pub fn counts(&self) -> PlanCounts {
        let partners = self
            .users
            .iter()
            .filter(|user| matches!(user.origin, UserOrigin::Partner { .. }))
            .count();
        PlanCounts {
            corpus_conversations: self.corpus_conversations,
            corpus_messages: self.corpus_messages,
            users: self.users.len(),
            senders: self.users.len() - partners,
            partners,
            friendships: self.chats.len(),
            conversations: self.chats.len(),
            messages: self.chats.iter().map(|chat| chat.messages.len()).sum(),
            skipped: self.skipped.len(),
        }
    }
}

impl PlannedChat {
    fn new(requester: UserIndex, accepter: UserIndex) -> Self {
        Self {
            requester,
            accepter,
            corpus_conversations: Vec::new(),
            messages: Vec::new(),
        }
    }
}

/// Password of a replayed user: fixed per username, so a later run can log in again.
fn password_for(username: &str) -> String {
    let digest = Sha256::digest(format!("beehive-replay:{username}").as_bytes());
    format!("Replay-{}", &hex::encode(digest)[..20])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "c1": {"messages": [[{"text": "hi", "timestamp": "2018-05-02T10:00:00Z", "sender": "aaaa"}],
                            [{"text": "yo", "timestamp": "2018-05-02T10:00:05Z", "sender": "bbbb"},
                             {"text": "  ", "timestamp": "2018-05-02T10:00:06Z", "sender": "bbbb"}]]},
        "c2": {"messages": [[{"text": "alone", "timestamp": "2018-05-02T09:00:00Z", "sender": "aaaa"}]]},
        "c3": {"messages": [[{"text": "again", "timestamp": "2018-05-01T08:00:00Z", "sender": "bbbb"}],
                            [{"text": "sure", "timestamp": "2018-05-01T08:00:01Z", "sender": "aaaa"}]]}
    }"#;

    fn sample_plan() -> ReplayPlan {
        ReplayPlan::build(&Corpus::parse(SAMPLE.as_bytes()).unwrap())
    }

    #[test]
    fn plan_counts_on_sample() {
        let counts = sample_plan().counts();
        assert_eq!(counts.corpus_conversations, 3);
        assert_eq!(counts.corpus_messages, 6);
        assert_eq!(counts.senders, 2);
        assert_eq!(counts.partners, 1);
        assert_eq!(counts.users, 3);
        assert_eq!(counts.friendships, 2);
        assert_eq!(counts.messages, 5);
        assert_eq!(counts.skipped, 1);
    }

    #[test]
    fn pair_conversations_merge_in_timestamp_order() {
        let plan = sample_plan();
        let chat = &plan.chats[0];
        assert_eq!(chat.corpus_conversations, ["c1", "c3"]);
        let texts: Vec<&str> = chat.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["again", "sure", "hi", "yo"]);
        assert_eq!(chat.messages[0].client_message_id, "chitchat:c3:0");
    }

    #[test]
    fn lone_writer_gets_partner() {
        let plan = sample_plan();
        let chat = &plan.chats[1];
        assert_eq!(chat.corpus_conversations, ["c2"]);
        assert_eq!(plan.users[chat.requester].username, "cc-aaaa");
        let partner = &plan.users[chat.accepter];
        assert_eq!(partner.username, "cc-partner-c2");
        assert_eq!(partner.email, "cc-partner-c2@replay.beehive.test");
        assert!(chat.messages.iter().all(|m| m.sender == chat.requester));
    }

    #[test]
    fn requester_wrote_first() {
        let plan = sample_plan();
        assert_eq!(plan.users[plan.chats[0].requester].username, "cc-aaaa");
        assert_eq!(plan.users[plan.chats[0].accepter].username, "cc-bbbb");
    }

    #[test]
    fn empty_text_is_skipped_with_reason() {
        let plan = sample_plan();
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].client_message_id, "chitchat:c1:2");
        assert_eq!(plan.skipped[0].reason, SkipReason::EmptyText);
    }

    #[test]
    fn password_is_stable_per_user() {
        assert_eq!(password_for("cc-aaaa"), password_for("cc-aaaa"));
        assert_ne!(password_for("cc-aaaa"), password_for("cc-bbbb"));
        assert_eq!(password_for("cc-aaaa").len(), "Replay-".len() + 20);
    }

    /// The chitchat corpus beside the repository, or `BEEHIVE_CHITCHAT_DATASET`.
    fn chitchat() -> Option<Corpus> {
        let path = crate::corpus::dataset_path();
        if !path.is_file() {
            assert!(
                std::env::var_os("CI").is_none(),
                "chitchat corpus missing at {}",
                path.display()
            );
            eprintln!("skipped: chitchat corpus missing at {}", path.display());
            return None;
        }
        Some(Corpus::load(&path).unwrap())
    }

    #[test]
    fn full_corpus_counts() {
        let Some(corpus) = chitchat() else { return };
        let counts = ReplayPlan::build(&corpus).counts();
        assert_eq!(counts.corpus_conversations, 7_168);
        assert_eq!(counts.corpus_messages, 258_145);
        assert_eq!(counts.senders, 1_315);
        assert_eq!(counts.partners, 3_150);
        assert_eq!(counts.users, 4_465);
        // 2,307 pairs of senders from 4,018 two-sender conversations, plus one per lone writer.
        assert_eq!(counts.friendships, 2_307 + 3_150);
        assert_eq!(counts.conversations, 5_457);
        assert_eq!(counts.skipped, 33);
        assert_eq!(counts.messages, 258_145 - 33);
    }

    #[test]
    fn first_200_conversations_counts() {
        let Some(mut corpus) = chitchat() else { return };
        corpus.truncate(200);
        let counts = ReplayPlan::build(&corpus).counts();
        assert_eq!(counts.corpus_messages, 6_367);
        assert_eq!(counts.senders, 145);
        assert_eq!(counts.partners, 91);
        assert_eq!(counts.friendships, 102 + 91);
        assert_eq!(counts.skipped, 0);
        assert_eq!(counts.messages, 6_367);
    }

    #[test]
    fn full_corpus_usernames_are_valid() {
        let Some(corpus) = chitchat() else { return };
        let plan = ReplayPlan::build(&corpus);
        for user in &plan.users {
            assert!(user.username.len() <= 50, "{}", user.username);
            assert!(
                user.username
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
                "{}",
                user.username
            );
            assert!(user.email.len() <= 100, "{}", user.email);
        }
    }
}
