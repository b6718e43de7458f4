//! `AddMembers`: the owner or an admin adds existing users to a group; users already in it are
//! skipped. New members see the history but start with nothing unread.

use std::collections::{BTreeSet, HashSet};

use beehive_generated::chat::rpc;
use beehive_generated::entity::conversation_members;
use beehive_generated::pb::chat::{AddMembersRequest, CommonResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, SqlErr};

use super::create_conversation::new_member;
use crate::ROLE_MEMBER;

impl Handle<rpc::AddMembers> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: AddMembersRequest,
    ) -> Result<CommonResponse, ServiceError> {
        let (conversation, _manager) = self.require_manager(&ctx, request.conversation_id).await?;

        let current: HashSet<i64> = conversation_members::Entity::find()
            .filter(conversation_members::Column::ConversationId.eq(conversation.id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|member| member.user_id)
            .collect();
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
        let max_members = self.config.max_group_members as usize;
        if current.len() + added.len() > max_members {
            return Err(ServiceError::invalid(
                "user_ids",
                format!(
                    "the group has {} members and holds at most {max_members}",
                    current.len()
                ),
            ));
        }
        let existing = self.users.existing(&ctx, &added).await?;
        if let Some(missing) = added.iter().find(|id| !existing.contains(id)) {
            return Err(ServiceError::not_found(format!("user {missing}")));
        }

        // Each new member's read marker starts at the newest message.
        let mut rows = Vec::with_capacity(added.len());
        for &user_id in &added {
            let stats = self.stats.stats(&ctx, user_id, &[conversation.id]).await?;
            let stats = stats.into_iter().next().unwrap_or_default();
            rows.push(new_member(
                conversation.id,
                user_id,
                ROLE_MEMBER,
                stats.last_seq,
                stats.sent_by_user,
            ));
        }
        let inserted = insert_members(&self.db, rows).await?;
        Ok(done(&format!("added {inserted} members")))
    }
}

/// Inserts member rows and returns how many were new. A row whose user a concurrent call added
/// first is skipped, so two overlapping calls both succeed.
///
/// All rows go in one statement; only when that statement hits the unique key
/// `(conversation_id, user_id)` are they inserted one by one, each skipping its own conflict.
/// `INSERT … ON CONFLICT` is avoided because a SQLite connection whose cached schema predates
/// the migration rejects its conflict target.
async fn insert_members(
    db: &DatabaseConnection,
    rows: Vec<conversation_members::ActiveModel>,
) -> Result<usize, DbErr> {
    let count = rows.len();
    match conversation_members::Entity::insert_many(rows.clone())
        .exec(db)
        .await
    {
        Ok(_) => return Ok(count),
        Err(err) if !is_unique_violation(&err) => return Err(err),
        Err(_) => {}
    }
    let mut inserted = 0;
    for row in rows {
        match conversation_members::Entity::insert(row)
            .exec_without_returning(db)
            .await
        {
            Ok(_) => inserted += 1,
            Err(err) if is_unique_violation(&err) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(inserted)
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

pub(crate) fn done(message: &str) -> CommonResponse {
    CommonResponse {
        success: true,
        message: message.to_owned(),
    }
}
