//! `SendMessage`: stores a member's message with the next `seq` of its conversation, and the
//! `message.push` and `message.index` events, in one transaction. A retried `client_msg_id`
//! returns the first message.

use beehive_generated::message::rpc;
use beehive_generated::pb::message::{SendMessageRequest, SendMessageResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};

use crate::store::{self, NewMessage};

/// Lookups of a concurrent send's row before a duplicate client id is reported as an error.
const CLIENT_ID_LOOKUP_ATTEMPTS: u32 = 40;
/// Pause between those lookups; 40 × 25 ms waits out one batch commit.
const CLIENT_ID_LOOKUP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

impl Handle<rpc::SendMessage> for crate::MessageService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: SendMessageRequest,
    ) -> Result<SendMessageResponse, ServiceError> {
        ctx.require_acting_user("sender_id", request.sender_id)?;
        let content_type = i16::try_from(request.content_type)
            .map_err(|_| ServiceError::invalid("content_type", "must be 1, 2, 3 or 4"))?;
        let content_chars = request.content.chars().count();
        if content_chars > self.max_content_chars {
            return Err(ServiceError::invalid(
                "content",
                format!(
                    "must be at most {} characters (got {content_chars})",
                    self.max_content_chars
                ),
            ));
        }
        if request.extra_data.len() > self.max_extra_data_bytes {
            return Err(ServiceError::invalid(
                "extra_data",
                format!(
                    "must be at most {} bytes (got {})",
                    self.max_extra_data_bytes,
                    request.extra_data.len()
                ),
            ));
        }
        if content_type == crate::CONTENT_TYPE_TEXT && is_blank(&request.content) {
            return Err(ServiceError::invalid(
                "content",
                "a text message must contain more than white space and invisible characters",
            ));
        }
        let extra_data = if request.extra_data.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&request.extra_data).map_err(|err| {
                ServiceError::invalid("extra_data", format!("invalid JSON: {err}"))
            })?)
        };
        let client_msg_id = Some(request.client_msg_id).filter(|id| !id.is_empty());

        self.require_sender(&ctx, request.conversation_id, request.sender_id)
            .await?;
        if let Some(client_msg_id) = &client_msg_id
            && let Some(first) =
                store::find_by_client_id(&self.db, request.sender_id, client_msg_id).await?
        {
            return retried(request.conversation_id, &first);
        }

        let message = NewMessage {
            conversation_id: request.conversation_id,
            sender_id: request.sender_id,
            content_type,
            content: request.content,
            extra_data,
            client_msg_id,
        };
        let row = match self.writer.send(message.clone()).await {
            Ok(row) => row,
            Err(err) if err.is_unique_violation() => {
                // A concurrent send with the same client id won. It may still be committing
                // (the writer rejects a batch's second copy before the first commits), so the
                // lookup is repeated briefly before giving up.
                let mut first = None;
                if let Some(id) = &message.client_msg_id {
                    for _ in 0..CLIENT_ID_LOOKUP_ATTEMPTS {
                        first = store::find_by_client_id(&self.db, message.sender_id, id).await?;
                        if first.is_some() {
                            break;
                        }
                        tokio::time::sleep(CLIENT_ID_LOOKUP_INTERVAL).await;
                    }
                }
                let first = first.ok_or_else(|| ServiceError::internal(err))?;
                return retried(message.conversation_id, &first);
            }
            Err(err) => return Err(err.into()),
        };

        self.hot.append(&row).await;
        Ok(SendMessageResponse {
            message_id: row.id,
            created_at: row.created_at.timestamp(),
        })
    }
}

/// Characters that render as nothing but are not Unicode `White_Space`: the zero-width space,
/// non-joiner and joiner, the word joiner, the byte order mark (zero-width no-break space),
/// the Mongolian vowel separator and the soft hyphen.
const INVISIBLE_CHARS: [char; 7] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{180E}', '\u{00AD}',
];

/// Returns whether `content` shows nothing: it is empty or only white space and
/// [`INVISIBLE_CHARS`].
fn is_blank(content: &str) -> bool {
    content
        .chars()
        .all(|c| c.is_whitespace() || INVISIBLE_CHARS.contains(&c))
}

/// Returns the first message for a retried send, unless the client id was used elsewhere.
fn retried(
    conversation_id: i64,
    first: &beehive_generated::entity::messages::Model,
) -> Result<SendMessageResponse, ServiceError> {
    if first.conversation_id != conversation_id {
        return Err(ServiceError::already_exists(
            "client_msg_id",
            format!(
                "already used for a message in conversation {}",
                first.conversation_id
            ),
        ));
    }
    Ok(SendMessageResponse {
        message_id: first.id,
        created_at: first.created_at.timestamp(),
    })
}
