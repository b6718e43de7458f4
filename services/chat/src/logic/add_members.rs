//! `AddMembers`: the owner or an admin adds existing users to a group; users already in it are
//! skipped. New members see the history but start with nothing unread.

use std::collections::{BTreeSet, HashSet};

use beehive_generated::chat::rpc;
use beehive_generated::entity::{conversation_members, conversations};
use beehive_generated::pb::chat::{AddMembersRequest, CommonResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::create_conversation::new_member;
use crate::ROLE_MEMBER;

impl Handle<rpc::AddMembers> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: AddMembersRequest,
    ) -> Result<CommonResponse, ServiceError> {
        let (conversation, _manager) = self.require_manager(&ctx, request.conversation_id).await?;
        let max_members = self.config.max_group_members as usize;

        // A first check without the lock rejects the plain cases before any call to the user
        // and message services.
        let current = member_ids(&self.db, conversation.id).await?;
        let added: Vec<i64> = request
            .user_ids
            .iter()
            .copied()
            .collect::<BTreeSet<i64>>()
            .into_iter()
            .filter(|id| !current.contains(id))
            .collect();
        if added.is_empty() {
            return Ok(done("no new members"));
        }
        check_cap(current.len(), added.len(), max_members)?;
        let existing = self.users.existing(&ctx, &added).await?;
        if let Some(missing) = added.iter().find(|id| !existing.contains(id)) {
            return Err(ServiceError::not_found(format!("user {missing}")));
        }

        // Each new member's read marker starts at the newest message.
        let mut rows = Vec::with_capacity(added.len());
        for &user_id in &added {
            let stats = self.stats.stats(&ctx, user_id, &[conversation.id]).await?;
            let stats = stats.into_iter().next().unwrap_or_default();
            let row = new_member(
                conversation.id,
                user_id,
                ROLE_MEMBER,
                stats.last_seq,
                stats.sent_by_user,
            );
            rows.push((user_id, row));
        }

        // Concurrent calls on one group run this part one at a time. Each locks the group's
        // row, counts the members again and inserts only while the group stays within the limit.
        let txn = self.db.begin().await?;
        lock_conversation(&txn, conversation.id).await?;
        let current = member_ids(&txn, conversation.id).await?;
        let rows: Vec<conversation_members::ActiveModel> = rows
            .into_iter()
            .filter(|(user_id, _)| !current.contains(user_id))
            .map(|(_, row)| row)
            .collect();
        if rows.is_empty() {
            return Ok(done("no new members"));
        }
        check_cap(current.len(), rows.len(), max_members)?;
        let inserted = rows.len();
        conversation_members::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(done(&format!("added {inserted} members")))
    }
}

/// Loads the user ids of a conversation's members.
async fn member_ids<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
) -> Result<HashSet<i64>, ServiceError> {
    Ok(conversation_members::Entity::find()
        .filter(conversation_members::Column::ConversationId.eq(conversation_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|member| member.user_id)
        .collect())
}

/// Locks the conversation's row until the transaction ends, with an update that changes
/// nothing. PostgreSQL and MySQL lock the row. SQLite takes its database write lock, and
/// because this is the transaction's first statement it waits up to the busy timeout instead
/// of failing on a stale snapshot.
async fn lock_conversation<C: ConnectionTrait>(
    conn: &C,
    conversation_id: i64,
) -> Result<(), ServiceError> {
    conversations::Entity::update_many()
        .col_expr(
            conversations::Column::Id,
            Expr::col(conversations::Column::Id),
        )
        .filter(conversations::Column::Id.eq(conversation_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Rejects with INVALID_ARGUMENT on `user_ids` when `adding` more members to `current` would
/// exceed `max_members` (the owner counts).
fn check_cap(current: usize, adding: usize, max_members: usize) -> Result<(), ServiceError> {
    if current + adding > max_members {
        return Err(ServiceError::invalid(
            "user_ids",
            format!("the group has {current} members and holds at most {max_members}"),
        ));
    }
    Ok(())
}

pub(crate) fn done(message: &str) -> CommonResponse {
    CommonResponse {
        success: true,
        message: message.to_owned(),
    }
}
