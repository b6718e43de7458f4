//! `CreateConversation`: a single chat between two friends (at most one per pair; creating it
//! again returns the first) or a group of existing users with the creator as owner. A peer or
//! member who does not exist is NOT_FOUND on `member_ids`; an existing peer who is not a
//! friend is FAILED_PRECONDITION.

use std::collections::BTreeSet;

use beehive_generated::chat::rpc;
use beehive_generated::entity::{conversation_members, conversations};
use beehive_generated::pb::chat::{CreateConversationRequest, CreateConversationResponse};
use beehive_runtime::{CallContext, Handle, ServiceError};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, SqlErr, TransactionTrait,
};

use crate::{ROLE_MEMBER, ROLE_OWNER, TYPE_GROUP, TYPE_SINGLE, members};

impl Handle<rpc::CreateConversation> for crate::ChatService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: CreateConversationRequest,
    ) -> Result<CreateConversationResponse, ServiceError> {
        ctx.require_acting_user("owner_id", request.owner_id)?;
        members::check_name(&request.name)?;
        let owner_id = request.owner_id;
        let others: BTreeSet<i64> = request
            .member_ids
            .iter()
            .copied()
            .filter(|&id| id != owner_id)
            .collect();
        let kind = i16::try_from(request.r#type)
            .ok()
            .filter(|kind| [TYPE_SINGLE, TYPE_GROUP].contains(kind))
            .ok_or_else(|| ServiceError::invalid("type", "must be 1 (single) or 2 (group)"))?;

        let conversation_id = if kind == TYPE_SINGLE {
            self.create_single(&ctx, owner_id, &others, &request.name)
                .await?
        } else {
            self.create_group(&ctx, owner_id, &others, &request.name)
                .await?
        };
        Ok(CreateConversationResponse { conversation_id })
    }
}

impl crate::ChatService {
    async fn create_single(
        &self,
        ctx: &CallContext,
        owner_id: i64,
        others: &BTreeSet<i64>,
        name: &str,
    ) -> Result<i64, ServiceError> {
        let peer = match others.iter().collect::<Vec<_>>().as_slice() {
            [peer] => **peer,
            _ => {
                return Err(ServiceError::invalid(
                    "member_ids",
                    "a single chat needs exactly one member besides the owner",
                ));
            }
        };
        let single_key = format!("{}:{}", owner_id.min(peer), owner_id.max(peer));
        if let Some(existing) = find_single(&self.db, &single_key).await? {
            return Ok(existing);
        }

        if !self.friends.are_friends(ctx, owner_id, peer).await? {
            // Only a refused pair pays for the lookup that tells a missing peer apart.
            if !self.users.existing(ctx, &[peer]).await?.contains(&peer) {
                return Err(ServiceError::not_found_field(
                    "member_ids",
                    format!("user {peer}"),
                ));
            }
            return Err(ServiceError::failed_precondition(format!(
                "users {owner_id} and {peer} are not friends"
            )));
        }

        let members = [(owner_id, ROLE_OWNER), (peer, ROLE_MEMBER)];
        match insert_conversation(
            &self.db,
            TYPE_SINGLE,
            name,
            owner_id,
            Some(&single_key),
            &members,
        )
        .await
        {
            Ok(id) => Ok(id),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                // A concurrent creation of the same pair committed first.
                find_single(&self.db, &single_key)
                    .await?
                    .ok_or_else(|| ServiceError::internal(err))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn create_group(
        &self,
        ctx: &CallContext,
        owner_id: i64,
        others: &BTreeSet<i64>,
        name: &str,
    ) -> Result<i64, ServiceError> {
        if others.is_empty() {
            return Err(ServiceError::invalid(
                "member_ids",
                "a group needs at least one member besides the owner",
            ));
        }
        let max_members = self.config.max_group_members as usize;
        if others.len() + 1 > max_members {
            return Err(ServiceError::invalid(
                "member_ids",
                format!("a group has at most {max_members} members, the owner included"),
            ));
        }

        let ids: Vec<i64> = others.iter().copied().collect();
        let existing = self.users.existing(ctx, &ids).await?;
        if let Some(missing) = ids.iter().find(|id| !existing.contains(id)) {
            return Err(ServiceError::not_found_field(
                "member_ids",
                format!("user {missing}"),
            ));
        }

        let members: Vec<(i64, i16)> = std::iter::once((owner_id, ROLE_OWNER))
            .chain(ids.iter().map(|&id| (id, ROLE_MEMBER)))
            .collect();
        Ok(insert_conversation(&self.db, TYPE_GROUP, name, owner_id, None, &members).await?)
    }
}

async fn find_single(db: &DatabaseConnection, single_key: &str) -> Result<Option<i64>, DbErr> {
    let found = conversations::Entity::find()
        .filter(conversations::Column::SingleKey.eq(single_key))
        .one(db)
        .await?;
    Ok(found.map(|conversation| conversation.id))
}

/// Inserts a conversation and its members in one transaction.
async fn insert_conversation(
    db: &DatabaseConnection,
    kind: i16,
    name: &str,
    owner_id: i64,
    single_key: Option<&str>,
    members: &[(i64, i16)],
) -> Result<i64, DbErr> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let conversation = conversations::ActiveModel {
        id: ActiveValue::NotSet,
        r#type: ActiveValue::Set(kind),
        name: ActiveValue::Set(name.to_owned()),
        avatar: ActiveValue::Set(None),
        owner_id: ActiveValue::Set(owner_id),
        single_key: ActiveValue::Set(single_key.map(str::to_owned)),
        created_at: ActiveValue::Set(now),
        updated_at: ActiveValue::Set(now),
    }
    .insert(&txn)
    .await?;

    let rows = members
        .iter()
        .map(|&(user_id, role)| new_member(conversation.id, user_id, role, 0, 0));
    conversation_members::Entity::insert_many(rows)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(conversation.id)
}

/// A member row whose read marker is at `read_seq` / `read_sent`.
pub(crate) fn new_member(
    conversation_id: i64,
    user_id: i64,
    role: i16,
    read_seq: i64,
    read_sent: i64,
) -> conversation_members::ActiveModel {
    conversation_members::ActiveModel {
        id: ActiveValue::NotSet,
        conversation_id: ActiveValue::Set(conversation_id),
        user_id: ActiveValue::Set(user_id),
        role: ActiveValue::Set(role),
        read_seq: ActiveValue::Set(read_seq),
        read_sent: ActiveValue::Set(read_sent),
        unread_adjust: ActiveValue::Set(0),
        last_read_at: ActiveValue::Set(None),
        joined_at: ActiveValue::Set(Utc::now()),
    }
}
