//! Hand-written logic of the chat service (port 8004): conversations, members and unread
//! counts.
//!
//! # Construction
//!
//! ```ignore
//! let token = Some(authenticator.issue_service_token()?);
//! let service = ChatService::new(ChatDeps {
//!     db,                                                    // migrated with ChatMigrator
//!     config: config.chat.clone(),
//!     friends: Arc::new(GrpcFriends::new(friend_client, token.clone())),
//!     users: Arc::new(GrpcUsers::new(user_client, token.clone())),
//!     stats: Arc::new(GrpcMessageStats::new(message_client, token)),
//! });
//! let server = beehive_generated::chat::server(Arc::new(service), limits);
//! ```
//!
//! The service has no background task.
//!
//! # Unread counts
//!
//! Sending a message writes nothing here. Each member row keeps a read marker: `read_seq` (the
//! conversation's newest `seq` when the member last read) and `read_sent` (how many messages
//! the member had sent by then), plus `unread_adjust` from `UpdateUnreadCount`. With `last_seq`
//! and `sent_by_user` from the message service's `GetConversationStats`, the member's count is
//! `max(0, (last_seq - read_seq) - (sent_by_user - read_sent) + unread_adjust)`: every message
//! after the marker except the member's own. It is exact as soon as `SendMessage` returns, and
//! a group of 500 costs a send no more than a chat of two.
//!
//! # Decisions where the contracts are silent
//!
//! - Single chats: the creator is the owner (role 3) and the peer a member (role 1). The pair
//!   key `"min:max"` is unique, so concurrent creations yield one conversation.
//! - Groups need at least one member besides the owner; members need not be friends of the
//!   owner; the limit `chat.max_group_members` counts the owner. `AddMembers` counts the
//!   members again inside a transaction that locks the group's row, so concurrent calls cannot
//!   together exceed the limit. A call that would exceed it is INVALID_ARGUMENT on `user_ids`
//!   and adds no one.
//! - A member who joins later starts with a read marker at the newest message: history is
//!   visible but not unread.
//! - Adding, removing and renaming are for groups; on a single chat they are
//!   FAILED_PRECONDITION. An admin may remove members but not other admins; the owner can never
//!   be removed (FAILED_PRECONDITION). Users in `user_ids` who are already members (add) or
//!   are not members (remove) are skipped, also when a concurrent `AddMembers` added them first.
//! - Leaving a group: a member calls `RemoveMembers` naming only themselves, whatever their
//!   role. The owner cannot leave (FAILED_PRECONDITION), nor can a member leave a single chat.
//!   The message service may accept the former member's sends for up to its membership cache
//!   TTL (2 s) after they left.
//! - `UpdateConversationInfo`: an empty field leaves the stored value unchanged.
//! - A conversation name may not contain control characters (NUL included) or directional
//!   formatting characters (U+202A to U+202E, U+2066 to U+2069), which could make it display
//!   as another text. An avatar must be an `http://` or `https://` URL, as a user's
//!   `avatar_url` must. Both are INVALID_ARGUMENT naming the field.
//! - `CheckMember`: a user may ask about themselves, or about others in a conversation they
//!   belong to; services may ask anything. A missing conversation has no members and sets
//!   `conversation_missing`. With `check_friendship`, a member of a single chat whose other
//!   user is no longer a friend gets `not_friends`. That costs one `IsFriend` call to the
//!   friend service, and its failure fails the call. The message service asks so and refuses
//!   such sends with FAILED_PRECONDITION, while the users keep their membership and history.
//! - Ids in requests must be positive: the protos' input rules make 0 and negative ids
//!   INVALID_ARGUMENT naming the field before any logic runs.
//! - A conversation id that names no conversation is NOT_FOUND on `conversation_id`, checked
//!   before membership; an existing conversation the caller is not in is PERMISSION_DENIED.
//! - Calls without a user field (add, remove, rename) act for the token's subject; service
//!   callers act with owner rights.

beehive_generated::chat_logic_modules!();

mod members;
pub mod peers;

use std::sync::Arc;

use beehive_runtime::config::ChatConfig;
use sea_orm::DatabaseConnection;

pub use peers::{Friends, GrpcFriends, GrpcMessageStats, GrpcUsers, MessageStats, Users};

/// Conversation type of a chat between two users.
pub const TYPE_SINGLE: i16 = 1;
/// Conversation type of a group.
pub const TYPE_GROUP: i16 = 2;
/// Member role of an ordinary member.
pub const ROLE_MEMBER: i16 = 1;
/// Member role of an admin.
pub const ROLE_ADMIN: i16 = 2;
/// Member role of the owner.
pub const ROLE_OWNER: i16 = 3;

/// Dependencies of [`ChatService::new`].
pub struct ChatDeps {
    /// Database holding the tables of `schema/chat.schema`, already migrated.
    pub db: DatabaseConnection,
    pub config: ChatConfig,
    pub friends: Arc<dyn Friends>,
    pub users: Arc<dyn Users>,
    pub stats: Arc<dyn MessageStats>,
}

/// Logic of `ChatService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct ChatService {
    db: DatabaseConnection,
    config: ChatConfig,
    friends: Arc<dyn Friends>,
    users: Arc<dyn Users>,
    stats: Arc<dyn MessageStats>,
}

impl ChatService {
    pub fn new(deps: ChatDeps) -> Self {
        Self {
            db: deps.db,
            config: deps.config,
            friends: deps.friends,
            users: deps.users,
            stats: deps.stats,
        }
    }
}
