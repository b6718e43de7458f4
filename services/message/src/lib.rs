//! Hand-written logic of the message service (port 8003).
//!
//! # Construction
//!
//! ```ignore
//! let members = Arc::new(ChatMembership::new(chat_client, Some(service_token)));
//! let hot = Arc::new(MemoryHotCache::new(capacity, ttl));  // or SharedHotCache over Redis
//! let service = MessageService::new(MessageDeps { db, members, hot, config: config.message.clone() });
//! let relay = service.spawn_relay(bus.clone());                      // keep the handle alive
//! let server = beehive_generated::message::server(Arc::new(service), limits);
//! ```
//!
//! `MessageService::new` must run inside a Tokio runtime: it starts the writer tasks that
//! commit concurrent sends together in one transaction (one on SQLite, four on PostgreSQL,
//! none on MySQL, where each send has its own transaction). [`MessageService::spawn_relay`] starts
//! the outbox relay that publishes `message.push` and `message.index`.
//!
//! # Decisions where the contracts are silent
//!
//! - Sending: the conversation counter, the message with the counter's new `seq`, the sender's
//!   counter and one outbox row commit in one transaction. The row fans out to both topics,
//!   `message.push` and `message.index`, so each message writes and deletes one outbox row.
//!   The counter's row lock serialises the senders of one conversation, so `seq` runs 1, 2, 3,
//!   … with no gap and no duplicate, and message ids grow with `seq` inside a conversation.
//! - The outbox row's id is a UUIDv5 of the message id, and each topic's event id is derived
//!   from it and the topic, so a re-published event keeps its id and consumers drop the copy.
//! - `client_msg_id` is unique per sender. A retry returns the first message's id and time; the
//!   same id reused for another conversation is ALREADY_EXISTS on `client_msg_id`.
//! - Membership comes from the chat service (`CheckMember`). A positive result is cached for
//!   [`membership::MEMBER_CACHE_TTL`], so a removed member may still send for that long;
//!   a negative result is not cached, so a new member can send at once. A user naming a
//!   conversation that does not exist gets NOT_FOUND on `conversation_id`; the chat service
//!   checks existence only after the member lookup failed, so members pay nothing for it.
//! - Ids in requests must be positive: the protos' input rules make 0 and negative ids
//!   INVALID_ARGUMENT naming the field, except `before_id`, where 0 asks for the newest page.
//!   A `before_id` or `message_id` that names no message (or, for `before_id`, a message of
//!   another conversation) is NOT_FOUND naming that field.
//! - In a single chat (type 1) whose two users are no longer friends, `SendMessage` is
//!   FAILED_PRECONDITION; both users may still read the history and update statuses. The chat
//!   service checks the friendship in `CheckMember` (`check_friendship`), and the answer is
//!   cached with the membership, so it costs a send nothing on a cache hit. Because of that
//!   cache, a former friend may still send for up to [`membership::MEMBER_CACHE_TTL`] (2 s)
//!   after the friendship ends, and a renewed friend may have to wait as long. A chat service
//!   that predates `not_friends` never reports it, so former friends can send through it.
//! - Service callers (service token or `trust` mode) may read any conversation; a user must be
//!   a member. `GetConversationStats` answers for the acting user only.
//!   NOTE: reads by service callers skip the chat service, so a conversation that does not
//!   exist reads as an empty one for them rather than NOT_FOUND.
//! - `content` may contain at most `message.max_content_chars` characters (default 10,000, the
//!   contract's own limit) and `extra_data` at most `message.max_extra_data_bytes` bytes
//!   (default 64 KiB). A longer one is INVALID_ARGUMENT naming the field. Configuration
//!   validation keeps a full page of 100 such messages within `server.max_message_bytes`
//!   (16 MiB by default; the largest default page is about 10.6 MB), so `GetMessages` cannot
//!   outgrow the response limit. NOTE: rows stored before these limits existed are not
//!   checked and can still make a page too large.
//! - A text message (`content_type` 1) whose `content` is only white space (Unicode
//!   `White_Space`, as `str::trim` strips it) and invisible characters (zero-width space,
//!   non-joiner and joiner, word joiner, byte order mark, Mongolian vowel separator, soft
//!   hyphen) is INVALID_ARGUMENT on `content`. The other
//!   types (2 image, 3 voice, 4 file) are not checked this way.
//! - `UpdateMessageStatus`: members other than the sender move the status forward; the same
//!   status again succeeds and changes nothing; a lower status is FAILED_PRECONDITION.
//! - The newest messages of a conversation (`message.hot_cache_size`, TTL
//!   `message.hot_cache_ttl_secs`) sit in the hot cache `msg:hot:{conversation_id}`. A send
//!   appends to it after the commit; a reader uses it only when its newest `seq` equals the
//!   conversation counter, so a stale entry (another process's race, a lost append) is never
//!   served.

beehive_generated::message_logic_modules!();

pub mod hot;
pub mod membership;
mod store;
mod writer;

use std::sync::Arc;

use beehive_runtime::bus::{Bus, Outbox, OutboxRelay, RelayConfig, RelayHandle};
use beehive_runtime::config::MessageConfig;
use beehive_runtime::{CallContext, ServiceError};
use sea_orm::DatabaseConnection;

pub use hot::{HotCache, MemoryHotCache, SharedHotCache};
pub use membership::{ChatMembership, MemberStatus, Membership};

/// `content_type` of a text message, the only type whose `content` must contain more than white
/// space and invisible characters.
pub const CONTENT_TYPE_TEXT: i16 = 1;

/// Name of the outbox table the message service writes its events to.
pub const OUTBOX_TABLE: &str = "message_outbox";

/// Dependencies of [`MessageService::new`].
pub struct MessageDeps {
    /// Database holding the tables of `schema/message.schema`, already migrated.
    pub db: DatabaseConnection,
    /// Membership checks, normally [`ChatMembership`] over the chat service.
    pub members: Arc<dyn Membership>,
    /// The hot cache of the newest messages per conversation.
    pub hot: Arc<dyn HotCache>,
    pub config: MessageConfig,
}

/// Logic of `MessageService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct MessageService {
    db: DatabaseConnection,
    /// `message.max_content_chars`.
    max_content_chars: usize,
    /// `message.max_extra_data_bytes`.
    max_extra_data_bytes: usize,
    members: Arc<dyn Membership>,
    hot: hot::HotMessages,
    outbox: Outbox,
    writer: writer::SendWriter,
}

impl MessageService {
    /// Builds the service and starts its writer tasks.
    pub fn new(deps: MessageDeps) -> Self {
        let outbox = Outbox::new(OUTBOX_TABLE).unwrap_or_else(|_| unreachable!("valid table name"));
        let writer = writer::SendWriter::new(deps.db.clone(), outbox.clone());
        Self {
            hot: hot::HotMessages::new(deps.hot, deps.config.hot_cache_size),
            max_content_chars: deps.config.max_content_chars as usize,
            max_extra_data_bytes: deps.config.max_extra_data_bytes as usize,
            db: deps.db,
            members: deps.members,
            outbox,
            writer,
        }
    }

    /// Starts the relay that publishes committed outbox rows to `bus`; it runs until the handle
    /// is stopped or dropped.
    pub fn spawn_relay(&self, bus: Arc<dyn Bus>) -> RelayHandle {
        OutboxRelay::new(
            self.db.clone(),
            self.outbox.clone(),
            bus,
            RelayConfig::default(),
        )
        .spawn()
    }

    /// Returns the outbox the service writes to; its relay wakes when sends commit.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Refuses a user caller who is not a member of `conversation_id`; services pass.
    async fn require_reader(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
    ) -> Result<(), ServiceError> {
        let Some(user_id) = ctx.user_id() else {
            return ctx.require_service();
        };
        self.require_member(ctx, conversation_id, user_id).await
    }

    /// Refuses a sender who may not send to `conversation_id`: the checks of
    /// [`Self::require_member`], and FAILED_PRECONDITION in a single chat whose two users are
    /// no longer friends.
    async fn require_sender(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        sender_id: i64,
    ) -> Result<(), ServiceError> {
        let status = self
            .members
            .check_member(ctx, conversation_id, sender_id)
            .await?;
        if status == MemberStatus::MemberNotFriends {
            return Err(ServiceError::failed_precondition(format!(
                "user {sender_id} is no longer a friend of the other user of single chat \
                 {conversation_id}; send a friend request to chat again"
            )));
        }
        member_check_result("conversation_id", conversation_id, sender_id, status)
    }

    /// Refuses `user_id` unless it is a member of `conversation_id`: NOT_FOUND naming the
    /// request field `conversation_id` when the conversation does not exist, else
    /// PERMISSION_DENIED.
    async fn require_member(
        &self,
        ctx: &CallContext,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<(), ServiceError> {
        self.require_member_named(ctx, "conversation_id", conversation_id, user_id)
            .await
    }

    /// [`Self::require_member`] for a conversation id taken from the request field `field`.
    async fn require_member_named(
        &self,
        ctx: &CallContext,
        field: &str,
        conversation_id: i64,
        user_id: i64,
    ) -> Result<(), ServiceError> {
        let status = self
            .members
            .check_member(ctx, conversation_id, user_id)
            .await?;
        member_check_result(field, conversation_id, user_id, status)
    }
}

/// Maps a membership status to the result of a member check whose conversation id came from
/// the request field `field`.
fn member_check_result(
    field: &str,
    conversation_id: i64,
    user_id: i64,
    status: MemberStatus,
) -> Result<(), ServiceError> {
    match status {
        MemberStatus::Member | MemberStatus::MemberNotFriends => Ok(()),
        MemberStatus::NotMember => Err(ServiceError::permission_denied(format!(
            "user {user_id} is not a member of conversation {conversation_id}"
        ))),
        MemberStatus::NoConversation => Err(ServiceError::not_found_field(
            field,
            format!("conversation {conversation_id}"),
        )),
    }
}
