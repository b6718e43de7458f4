//! `CompleteMultipartUpload`: checks that every part is stored with the etag the client lists,
//! assembles the parts as a stream, and keeps the file only when its SHA-256 equals the declared
//! one (DATA_LOSS otherwise).

use std::collections::{BTreeMap, BTreeSet};

use beehive_generated::entity::{files, multipart_parts, multipart_uploads};
use beehive_generated::file::rpc;
use beehive_generated::pb::file::{CompleteMultipartUploadRequest, UploadFileResponse};
use beehive_runtime::storage::{ContentHash, UploadId};
use beehive_runtime::{CallContext, Handle, ServiceError};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::upload_file::response;
use crate::{
    FileService, add_reference, file_url, is_unique_violation, parse_hash, storage_error,
    storage_path,
};

/// Transactions tried when completing an upload races another upload of the same content.
const PUBLISH_ATTEMPTS: usize = 2;

impl Handle<rpc::CompleteMultipartUpload> for FileService {
    async fn handle(
        &self,
        ctx: CallContext,
        request: CompleteMultipartUploadRequest,
    ) -> Result<UploadFileResponse, ServiceError> {
        let (upload_id, upload) = self.load_upload(&ctx, &request.upload_id).await?;
        let declared = parse_hash("file_hash", &upload.file_hash)?;
        let mut listed = BTreeMap::new();
        for (index, part) in request.parts.iter().enumerate() {
            if part.part_number > upload.total_parts {
                return Err(ServiceError::invalid(
                    format!("parts[{index}].part_number"),
                    format!("the upload has parts 1 to {}", upload.total_parts),
                ));
            }
            if listed
                .insert(part.part_number, part.etag.to_ascii_lowercase())
                .is_some()
            {
                return Err(ServiceError::invalid(
                    format!("parts[{index}].part_number"),
                    format!("part {} is listed twice", part.part_number),
                ));
            }
        }

        let stored: BTreeMap<i32, String> = multipart_parts::Entity::find()
            .filter(multipart_parts::Column::UploadId.eq(&upload.upload_id))
            .all(&self.db)
            .await
            .map_err(ServiceError::internal)?
            .into_iter()
            .map(|part| (part.part_number, part.etag))
            .collect();
        check_parts(upload.total_parts, &listed, &stored)?;

        // The assembly runs in its own task, so a call cut off by its deadline still finishes
        // the file; the client then finds it with CheckFileExists.
        let service = self.clone();
        let (file, is_duplicate) = tokio::spawn(async move {
            service
                .assemble_and_publish(&upload_id, &upload, &declared)
                .await
        })
        .await
        .map_err(ServiceError::internal)??;

        Ok(response(&file, is_duplicate))
    }
}

impl FileService {
    /// Concatenates the parts, checks the hash and records the file.
    async fn assemble_and_publish(
        &self,
        upload_id: &UploadId,
        upload: &multipart_uploads::Model,
        declared: &ContentHash,
    ) -> Result<(files::Model, bool), ServiceError> {
        let numbers: Vec<u32> = (1..=upload.total_parts.unsigned_abs()).collect();
        let assembled = self
            .store
            .assemble(upload_id, &numbers)
            .await
            .map_err(storage_error)?;
        if assembled.hash != *declared {
            self.remove_unclaimed(&assembled.hash).await;
            return Err(ServiceError::DataLoss(format!(
                "the assembled file hashes to {} but {declared} was declared; re-send the parts that differ",
                assembled.hash
            )));
        }

        let published = self.publish(upload, declared).await?;
        if let Err(err) = self.store.discard_upload(upload_id).await {
            tracing::warn!(upload = %upload_id, error = %err, "removing the parts of a completed upload failed");
        }
        Ok(published)
    }

    /// Records the assembled file and removes the upload's rows in one transaction. Returns the
    /// file row and whether the content was stored before (a duplicate).
    async fn publish(
        &self,
        upload: &multipart_uploads::Model,
        hash: &ContentHash,
    ) -> Result<(files::Model, bool), ServiceError> {
        let row = files::ActiveModel {
            user_id: Set(upload.user_id),
            file_hash: Set(hash.to_string()),
            file_name: Set(upload.file_name.clone()),
            file_size: Set(upload.file_size),
            file_type: Set(upload.file_type.clone()),
            storage_path: Set(storage_path(hash)),
            url: Set(file_url(hash)),
            usage_count: Set(1),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        };

        // A second attempt runs only after a concurrent upload inserted the same hash, which the
        // second attempt then finds and counts as a duplicate.
        for _attempt in 0..PUBLISH_ATTEMPTS {
            let txn = self.db.begin().await.map_err(ServiceError::internal)?;
            // Removing the upload row first makes a concurrent completion of the same upload
            // fail here instead of counting the file twice.
            let claimed = multipart_uploads::Entity::delete_many()
                .filter(multipart_uploads::Column::Id.eq(upload.id))
                .exec(&txn)
                .await
                .map_err(ServiceError::internal)?;
            if claimed.rows_affected == 0 {
                return Err(ServiceError::not_found(format!(
                    "upload {} (already completed)",
                    upload.upload_id
                )));
            }
            multipart_parts::Entity::delete_many()
                .filter(multipart_parts::Column::UploadId.eq(&upload.upload_id))
                .exec(&txn)
                .await
                .map_err(ServiceError::internal)?;

            let existing = files::Entity::find()
                .filter(files::Column::FileHash.eq(hash.as_str()))
                .one(&txn)
                .await
                .map_err(ServiceError::internal)?;
            if let Some(existing) = existing {
                Self::add_usage(&txn, existing.id, upload.user_id, &upload.file_name)
                    .await
                    .map_err(ServiceError::internal)?;
                txn.commit().await.map_err(ServiceError::internal)?;
                self.invalidate(&existing).await;
                return Ok((existing, true));
            }
            match files::Entity::insert(row.clone())
                .exec_with_returning(&txn)
                .await
            {
                Ok(model) => {
                    add_reference(&txn, model.id, upload.user_id, &upload.file_name)
                        .await
                        .map_err(ServiceError::internal)?;
                    txn.commit().await.map_err(ServiceError::internal)?;
                    self.invalidate(&model).await;
                    return Ok((model, false));
                }
                Err(err) if is_unique_violation(&err) => {
                    txn.rollback().await.map_err(ServiceError::internal)?;
                }
                Err(err) => return Err(ServiceError::internal(err)),
            }
        }
        Err(ServiceError::Unavailable(format!(
            "completing upload {} conflicted with concurrent uploads; retry",
            upload.upload_id
        )))
    }

    /// Deletes an object that no `files` row refers to, such as the result of an assembly that
    /// did not match its declared hash.
    async fn remove_unclaimed(&self, hash: &ContentHash) {
        match self.find_by_hash_uncached(hash).await {
            Ok(None) => {
                if let Err(err) = self.store.delete(hash).await {
                    tracing::warn!(hash = %hash, error = %err, "removing an unclaimed object failed");
                }
            }
            Ok(Some(_)) => {}
            Err(err) => {
                tracing::warn!(hash = %hash, error = %err, "checking an unclaimed object failed");
            }
        }
    }
}

/// Checks that every part 1..=total is stored and listed with its stored etag; the error names
/// each missing, unlisted and mismatched part.
fn check_parts(
    total: i32,
    listed: &BTreeMap<i32, String>,
    stored: &BTreeMap<i32, String>,
) -> Result<(), ServiceError> {
    let mut missing = BTreeSet::new();
    let mut unlisted = BTreeSet::new();
    let mut mismatched = BTreeSet::new();
    for number in 1..=total {
        match (listed.get(&number), stored.get(&number)) {
            (_, None) => {
                missing.insert(number);
            }
            (None, Some(_)) => {
                unlisted.insert(number);
            }
            (Some(listed), Some(stored)) if listed != stored => {
                mismatched.insert(number);
            }
            _ => {}
        }
    }
    if missing.is_empty() && unlisted.is_empty() && mismatched.is_empty() {
        return Ok(());
    }

    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("parts not uploaded: {}", join(&missing)));
    }
    if !unlisted.is_empty() {
        problems.push(format!(
            "parts not listed in the request: {}",
            join(&unlisted)
        ));
    }
    if !mismatched.is_empty() {
        problems.push(format!("parts whose etag differs: {}", join(&mismatched)));
    }
    Err(ServiceError::failed_precondition(problems.join("; ")))
}

fn join(numbers: &BTreeSet<i32>) -> String {
    numbers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
