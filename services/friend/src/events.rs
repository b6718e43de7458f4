//! `friend.event` payloads written to the outbox with the change they announce.

use beehive_runtime::bus::{Event, TOPIC_FRIEND_EVENT};
use serde_json::json;

/// Event of an accepted request: `from_user_id` and `to_user_id` are friends now.
pub(crate) fn accepted(request_id: i64, from_user_id: i64, to_user_id: i64) -> Event {
    Event::new(
        TOPIC_FRIEND_EVENT,
        json!({
            "type": "accepted",
            "request_id": request_id,
            "from_user_id": from_user_id,
            "to_user_id": to_user_id,
        }),
    )
}

/// Event of a deleted friendship; `user_id` deleted `friend_id`.
pub(crate) fn deleted(user_id: i64, friend_id: i64) -> Event {
    Event::new(
        TOPIC_FRIEND_EVENT,
        json!({
            "type": "deleted",
            "user_id": user_id,
            "friend_id": friend_id,
        }),
    )
}
