//! Hand-written logic of the file service (port 8005).
//!
//! Files are content-addressed: the bytes live in a [`FileStore`] under their lowercase hex
//! SHA-256, and one `files` row exists per distinct content. Build the service with
//! [`FileService::new`] from a [`FileDeps`], optionally read rows through the cache with
//! [`FileService::with_cache`], serve it with `beehive_generated::file::server`, and start the
//! expiry sweep of abandoned multipart uploads with [`FileService::spawn_background`]:
//!
//! ```ignore
//! let service = Arc::new(
//!     FileService::new(FileDeps { config: config.file.clone(), db, store })
//!         .with_cache(CacheAside::new(cache, database.name.clone())),
//! );
//! let sweep = service.spawn_background(shutdown.clone());
//! ```
//!
//! Decisions the contracts leave open:
//! - The URL of a file is `/files/<hash>`. File names are metadata only: the proto rules reject
//!   empty names, names over 255 bytes and control characters (NUL included), and any other
//!   name, `../../etc/passwd` or `/etc/passwd` too, is stored as given and never reaches a path.
//! - `usage_count` counts uploads of the same content by anyone; `file_refs` records how many of
//!   them each user made. DeleteFile by a user removes one of that user's uploads: a user who
//!   holds no reference gets PERMISSION_DENIED. Removing a user's last upload also removes their
//!   access and their file name. A service token (or `trust` mode) removes the
//!   file outright. The stored bytes go when the count reaches zero.
//! - A user reads a file (GetFileInfo, DownloadFile) by id only after uploading that content
//!   (UploadFile, CompleteMultipartUpload, or either one finding the content already stored),
//!   because ids are sequential and anyone could try them. Each upload records the uploader's
//!   own file name (`file_names`), and GetFileInfo returns that name, so two users who upload the
//!   same content never see each other's names. Services and `trust` mode read every file and see
//!   the first uploader's name. Others get PERMISSION_DENIED; an unknown id is NOT_FOUND.
//! - Files are shared by URL inside conversations, and the URL carries the content hash, which only
//!   someone who has the bytes or was given the URL can know. So a user who has not uploaded a file
//!   reads it by passing that hash as `file_hash` with the id. That user sees no file name, since
//!   the name belongs to the uploader (a message carries the name its sender chose). The URL is not
//!   served over HTTP: `/files/<hash>` only names the content.
//! - Multipart uploads belong to the user who started them; only that user (or a service) may
//!   add parts, read the status or complete them. Every stored part pushes the expiry back by
//!   `file.upload_expiry_secs`, so only uploads without activity for that long are swept.
//! - A completed upload whose assembled hash differs from the declared one fails with DATA_LOSS
//!   and keeps its parts, so the client can re-send the wrong ones before it expires.
//! - CompleteMultipartUpload reads and hashes the whole file, so clients give it a deadline to
//!   match the size (the default 2 seconds covers only small files). A completion cut off by its
//!   deadline still finishes on the server; the client finds the file with CheckFileExists.
//! - Completing an upload of content that is already stored counts as a duplicate upload
//!   (`is_duplicate` true, `usage_count` + 1), like UploadFile.

use std::sync::Arc;
use std::time::Duration;

use beehive_generated::entity::{file_names, file_refs, files, multipart_parts, multipart_uploads};
use beehive_generated::model::files::FilesModel;
use beehive_runtime::cache::CacheAside;
use beehive_runtime::config::FileConfig;
use beehive_runtime::storage::{ContentHash, FileStore, StorageError, UploadId};
use beehive_runtime::{CallContext, ServiceError};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
    SqlErr, TransactionTrait,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

beehive_generated::file_logic_modules!();

/// Prefix of every file URL; the content hash follows it.
pub const URL_PREFIX: &str = "/files/";
/// Longest pause between two expiry sweeps.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest pause between two expiry sweeps.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Dependencies of [`FileService::new`].
pub struct FileDeps {
    /// The `file.*` settings: size limits, part size and upload expiry.
    pub config: FileConfig,
    /// Database holding the tables of `schema/file.schema` (migrated with `FileMigrator`).
    pub db: DatabaseConnection,
    /// Where the bytes live, such as `LocalStore::open(data_dir)`.
    pub store: Arc<dyn FileStore>,
}

/// Logic of `FileService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`. Clones share the
/// database pool, the store and the cache.
#[derive(Clone)]
pub struct FileService {
    config: FileConfig,
    db: DatabaseConnection,
    store: Arc<dyn FileStore>,
    /// `files` rows by id and by hash, when [`FileService::with_cache`] set a cache.
    cached: Option<FilesModel>,
}

impl FileService {
    pub fn new(deps: FileDeps) -> Self {
        Self {
            config: deps.config,
            db: deps.db,
            store: deps.store,
            cached: None,
        }
    }

    /// Reads `files` rows by id and by hash through `cache` (cache-aside); writes invalidate
    /// the row's keys after they commit.
    pub fn with_cache(mut self, cache: CacheAside) -> Self {
        self.cached = Some(FilesModel::new(self.db.clone(), cache));
        self
    }

    /// Starts the sweep that discards multipart uploads idle for `file.upload_expiry_secs`; it
    /// runs until `shutdown` is cancelled.
    pub fn spawn_background(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let service = Arc::clone(self);
        let interval = sweep_interval(service.config.upload_expiry_secs);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                match service.sweep_expired_uploads().await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "discarded expired multipart uploads"),
                    Err(err) => {
                        tracing::warn!(error = %err, "sweeping expired multipart uploads failed")
                    }
                }
            }
        })
    }

    /// Discards every multipart upload whose expiry has passed: its staged parts, its part rows
    /// and its upload row. Returns how many uploads were removed.
    pub async fn sweep_expired_uploads(&self) -> Result<usize, ServiceError> {
        let expired = multipart_uploads::Entity::find()
            .filter(multipart_uploads::Column::ExpiresAt.lt(Utc::now()))
            .all(&self.db)
            .await
            .map_err(ServiceError::internal)?;

        let mut removed = 0;
        for upload in expired {
            match self.discard_upload(&upload.upload_id).await {
                Ok(()) => removed += 1,
                Err(err) => {
                    tracing::warn!(upload = %upload.upload_id, error = %err, "discarding an expired upload failed");
                }
            }
        }
        Ok(removed)
    }

    /// Removes an upload's rows, then its staged parts.
    async fn discard_upload(&self, upload_id: &str) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(ServiceError::internal)?;
        multipart_parts::Entity::delete_many()
            .filter(multipart_parts::Column::UploadId.eq(upload_id))
            .exec(&txn)
            .await
            .map_err(ServiceError::internal)?;
        multipart_uploads::Entity::delete_many()
            .filter(multipart_uploads::Column::UploadId.eq(upload_id))
            .exec(&txn)
            .await
            .map_err(ServiceError::internal)?;
        txn.commit().await.map_err(ServiceError::internal)?;

        if let Ok(id) = UploadId::parse(upload_id) {
            self.store
                .discard_upload(&id)
                .await
                .map_err(ServiceError::internal)?;
        }
        Ok(())
    }

    /// How long an idle multipart upload is kept.
    fn expiry(&self) -> chrono::TimeDelta {
        let secs = i64::try_from(self.config.upload_expiry_secs).unwrap_or(i64::MAX);
        chrono::TimeDelta::try_seconds(secs).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Loads a multipart upload that exists, has not expired and may be used by the caller.
    async fn load_upload(
        &self,
        ctx: &CallContext,
        upload_id: &str,
    ) -> Result<(UploadId, multipart_uploads::Model), ServiceError> {
        let id = UploadId::parse(upload_id).map_err(|_| {
            ServiceError::invalid(
                "upload_id",
                "expected an id returned by InitMultipartUpload",
            )
        })?;
        let upload = multipart_uploads::Entity::find()
            .filter(multipart_uploads::Column::UploadId.eq(id.as_str()))
            .one(&self.db)
            .await
            .map_err(ServiceError::internal)?
            .filter(|upload| upload.expires_at > Utc::now())
            .ok_or_else(|| ServiceError::not_found(format!("upload {upload_id}")))?;
        if let Some(user) = ctx.user_id()
            && user != upload.user_id
        {
            return Err(ServiceError::permission_denied(format!(
                "upload {upload_id} belongs to another user"
            )));
        }
        Ok((id, upload))
    }

    /// Records one more upload of stored content by `user_id` under `file_name`: `usage_count`
    /// + 1, the user's reference count + 1 and the user's name for the file, in one transaction.
    async fn add_usage(
        conn: &DatabaseTransaction,
        file_id: i64,
        user_id: i64,
        file_name: &str,
    ) -> Result<(), DbErr> {
        files::Entity::update_many()
            .col_expr(
                files::Column::UsageCount,
                Expr::col(files::Column::UsageCount).add(1),
            )
            .filter(files::Column::Id.eq(file_id))
            .exec(conn)
            .await?;
        add_reference(conn, file_id, user_id, file_name).await
    }

    /// Stores the row of newly stored content, or, when a concurrent upload inserted the same
    /// hash first, counts this upload as a duplicate of it. Returns the row and whether it was
    /// a duplicate.
    async fn insert_or_reuse(
        &self,
        row: files::ActiveModel,
        hash: &ContentHash,
        user_id: i64,
        file_name: &str,
    ) -> Result<(files::Model, bool), ServiceError> {
        let txn = self.db.begin().await.map_err(ServiceError::internal)?;
        match files::Entity::insert(row).exec_with_returning(&txn).await {
            Ok(model) => {
                add_reference(&txn, model.id, user_id, file_name)
                    .await
                    .map_err(ServiceError::internal)?;
                txn.commit().await.map_err(ServiceError::internal)?;
                self.invalidate(&model).await;
                Ok((model, false))
            }
            Err(err) if is_unique_violation(&err) => {
                // Another upload of the same content committed first: this one is a duplicate.
                txn.rollback().await.map_err(ServiceError::internal)?;
                let existing = self.find_by_hash_uncached(hash).await?.ok_or_else(|| {
                    ServiceError::internal(format!("file {hash} vanished after a unique conflict"))
                })?;
                self.register_duplicate(&existing, user_id, file_name)
                    .await?;
                Ok((existing, true))
            }
            Err(err) => Err(ServiceError::internal(err)),
        }
    }

    async fn register_duplicate(
        &self,
        file: &files::Model,
        user_id: i64,
        file_name: &str,
    ) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(ServiceError::internal)?;
        Self::add_usage(&txn, file.id, user_id, file_name)
            .await
            .map_err(ServiceError::internal)?;
        txn.commit().await.map_err(ServiceError::internal)?;
        self.invalidate(file).await;
        Ok(())
    }

    async fn find_by_hash(&self, hash: &ContentHash) -> Result<Option<files::Model>, ServiceError> {
        if let Some(cached) = &self.cached {
            return cached
                .find_one_by_file_hash(hash.as_str())
                .await
                .map_err(ServiceError::internal);
        }
        files::Entity::find()
            .filter(files::Column::FileHash.eq(hash.as_str()))
            .one(&self.db)
            .await
            .map_err(ServiceError::internal)
    }

    async fn find_by_id(&self, file_id: i64) -> Result<files::Model, ServiceError> {
        let found = match &self.cached {
            Some(cached) => cached
                .find_one(file_id)
                .await
                .map_err(ServiceError::internal)?,
            None => files::Entity::find_by_id(file_id)
                .one(&self.db)
                .await
                .map_err(ServiceError::internal)?,
        };
        found.ok_or_else(|| ServiceError::not_found(format!("file {file_id}")))
    }

    /// Loads file `file_id` for a read by the caller and returns it with the file name the
    /// caller may see.
    ///
    /// Services (and `trust` mode) read any file and see the first uploader's name. A user who
    /// has uploaded the content reads it and sees the name of their own latest upload. Any other
    /// user reads it only by giving the hash from its URL (`file_hash`), and then sees no name.
    /// The rest get PERMISSION_DENIED; an unknown id is NOT_FOUND for everyone.
    async fn authorize_read(
        &self,
        ctx: &CallContext,
        file_id: i64,
        file_hash: &str,
    ) -> Result<(files::Model, String), ServiceError> {
        let file = self.find_by_id(file_id).await?;
        let Some(user_id) = ctx.user_id() else {
            let name = file.file_name.clone();
            return Ok((file, name));
        };
        if let Some(name) = self.owner_name(&file, user_id).await? {
            return Ok((file, name));
        }
        if !file_hash.is_empty() && parse_hash("file_hash", file_hash)?.as_str() == file.file_hash {
            return Ok((file, String::new()));
        }
        Err(ServiceError::permission_denied(format!(
            "user {user_id} has not uploaded file {file_id}. Pass file_hash from the file's URL to read a file shared with you"
        )))
    }

    /// Returns the name `user_id` gave `file`, or `None` when the user has no upload of it.
    async fn owner_name(
        &self,
        file: &files::Model,
        user_id: i64,
    ) -> Result<Option<String>, ServiceError> {
        let reference = file_refs::Entity::find()
            .filter(file_refs::Column::FileId.eq(file.id))
            .filter(file_refs::Column::UserId.eq(user_id))
            .filter(file_refs::Column::RefCount.gt(0))
            .one(&self.db)
            .await
            .map_err(ServiceError::internal)?;
        if reference.is_none() {
            return Ok(None);
        }
        let named = file_names::Entity::find()
            .filter(file_names::Column::FileId.eq(file.id))
            .filter(file_names::Column::UserId.eq(user_id))
            .one(&self.db)
            .await
            .map_err(ServiceError::internal)?;
        Ok(Some(match named {
            Some(row) => row.file_name,
            // Uploads made before names were kept per user have no `file_names` row. The first
            // uploader's name is in `files`, and other uploaders' names were not stored.
            None if file.user_id == user_id => file.file_name.clone(),
            None => String::new(),
        }))
    }

    /// Reads a row by hash from the database, skipping a cached not-found placeholder.
    async fn find_by_hash_uncached(
        &self,
        hash: &ContentHash,
    ) -> Result<Option<files::Model>, ServiceError> {
        files::Entity::find()
            .filter(files::Column::FileHash.eq(hash.as_str()))
            .one(&self.db)
            .await
            .map_err(ServiceError::internal)
    }

    /// Drops the cached entries (and not-found placeholders) of a row after a committed write.
    async fn invalidate(&self, file: &files::Model) {
        if let Some(cached) = &self.cached {
            cached.invalidate(file).await;
        }
    }
}

/// Adds one reference of `user_id` to `file_id`, creating the row on the first one, and records
/// `file_name` as the user's name for the file.
///
/// An update, then an insert inside a savepoint, then the update again when a concurrent call
/// inserted first. `INSERT … ON CONFLICT` is avoided because a SQLite connection whose cached
/// schema predates the migration rejects its conflict target.
pub(crate) async fn add_reference(
    conn: &DatabaseTransaction,
    file_id: i64,
    user_id: i64,
    file_name: &str,
) -> Result<(), DbErr> {
    set_file_name(conn, file_id, user_id, file_name).await?;
    let increment = || {
        file_refs::Entity::update_many()
            .col_expr(
                file_refs::Column::RefCount,
                Expr::col(file_refs::Column::RefCount).add(1),
            )
            .filter(file_refs::Column::FileId.eq(file_id))
            .filter(file_refs::Column::UserId.eq(user_id))
    };
    if increment().exec(conn).await?.rows_affected > 0 {
        return Ok(());
    }

    let reference = file_refs::ActiveModel {
        file_id: Set(file_id),
        user_id: Set(user_id),
        ref_count: Set(1),
        ..Default::default()
    };
    let savepoint = conn.begin().await?;
    match file_refs::Entity::insert(reference)
        .exec_without_returning(&savepoint)
        .await
    {
        Ok(_) => savepoint.commit().await,
        Err(err) if is_unique_violation(&err) => {
            savepoint.rollback().await?;
            increment().exec(conn).await.map(|_| ())
        }
        Err(err) => Err(err),
    }
}

/// Stores `file_name` as the name `user_id` gave `file_id`, the same way as [`add_reference`].
async fn set_file_name(
    conn: &DatabaseTransaction,
    file_id: i64,
    user_id: i64,
    file_name: &str,
) -> Result<(), DbErr> {
    let rename = || {
        file_names::Entity::update_many()
            .col_expr(file_names::Column::FileName, Expr::value(file_name))
            .filter(file_names::Column::FileId.eq(file_id))
            .filter(file_names::Column::UserId.eq(user_id))
    };
    if rename().exec(conn).await?.rows_affected > 0 {
        return Ok(());
    }

    let row = file_names::ActiveModel {
        file_id: Set(file_id),
        user_id: Set(user_id),
        file_name: Set(file_name.to_owned()),
        ..Default::default()
    };
    let savepoint = conn.begin().await?;
    match file_names::Entity::insert(row)
        .exec_without_returning(&savepoint)
        .await
    {
        Ok(_) => savepoint.commit().await,
        Err(err) if is_unique_violation(&err) => {
            savepoint.rollback().await?;
            rename().exec(conn).await.map(|_| ())
        }
        Err(err) => Err(err),
    }
}

/// The URL a file is served under: derived from the hash alone.
pub fn file_url(hash: &ContentHash) -> String {
    format!("{URL_PREFIX}{hash}")
}

/// Where the store keeps an object, relative to the data directory; informational only.
fn storage_path(hash: &ContentHash) -> String {
    let hex = hash.as_str();
    format!("files/{}/{}/{hex}", &hex[..2], &hex[2..4])
}

/// Parses a hash from request field `field`, lowercasing it.
fn parse_hash(field: &str, text: &str) -> Result<ContentHash, ServiceError> {
    ContentHash::parse(text)
        .map_err(|_| ServiceError::invalid(field, "expected a SHA-256 as 64 hex digits"))
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Maps a storage failure: a missing object or part is NOT_FOUND, anything else INTERNAL.
fn storage_error(err: StorageError) -> ServiceError {
    match err {
        StorageError::NotFound(hash) => ServiceError::not_found(format!("content {hash}")),
        StorageError::PartNotFound { upload, part } => {
            ServiceError::failed_precondition(format!("part {part} of upload {upload} is missing"))
        }
        other => ServiceError::internal(other),
    }
}

/// Pause between sweeps: a quarter of the expiry, kept between 1 second and 1 minute.
fn sweep_interval(expiry_secs: u64) -> Duration {
    (Duration::from_secs(expiry_secs) / 4).clamp(MIN_SWEEP_INTERVAL, MAX_SWEEP_INTERVAL)
}

/// The number of parts a file of `size` bytes has when cut into `part_bytes` parts; an empty
/// file is one empty part.
fn expected_parts(size: u64, part_bytes: u64) -> u64 {
    Ord::max(size.div_ceil(part_bytes), 1)
}

/// The size part `number` (from 1) must have.
fn expected_part_size(size: u64, part_bytes: u64, number: u64) -> u64 {
    let start = (number - 1) * part_bytes;
    Ord::min(size.saturating_sub(start), part_bytes)
}
