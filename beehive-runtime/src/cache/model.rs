//! Cache-aside rows of any SeaORM entity: the generic half of every generated cached model.

use std::marker::PhantomData;
use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, Iterable, ModelTrait,
    PrimaryKeyToColumn, QueryFilter, Select, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CacheAside;

/// A failure of a cached model operation. Cache failures never appear here: they are logged and
/// the database answers instead.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("database query failed: {0}")]
    Database(#[source] Arc<DbErr>),
    #[error("row of `{table}` not found")]
    NotFound { table: &'static str },
}

impl From<DbErr> for ModelError {
    fn from(error: DbErr) -> Self {
        Self::Database(Arc::new(error))
    }
}

impl ModelError {
    /// Returns the database error, if the database failed.
    pub fn db_err(&self) -> Option<&DbErr> {
        match self {
            Self::Database(error) => Some(error),
            Self::NotFound { .. } => None,
        }
    }
}

/// An entity whose rows are cached; implemented by the generated models.
pub trait CachedEntity: EntityTrait {
    /// The table name, as it appears in cache keys.
    const TABLE: &'static str;

    /// Returns the cache key of `row` for every cached key whose columns are all non-null.
    fn cache_keys(cache: &CacheAside, row: &Self::Model) -> Vec<String>;
}

/// Most decoded rows a [`ModelStore`] keeps beside the cache.
pub const MAX_DECODED_ROWS: u64 = 10_000;

/// A row decoded from the cached text `json`.
struct Decoded<M> {
    json: Arc<str>,
    row: M,
}

/// Reads and writes rows of `E` through the cache.
///
/// The cache stores rows as JSON text, one format for moka and Redis. Each store also keeps the
/// rows it decoded last, by key, with the text they came from, and a hit with the same text
/// reuses the decoded row. The cache stays the only source, because a decoded row is returned
/// only while the cache returns exactly its text.
pub struct ModelStore<E: EntityTrait> {
    db: DatabaseConnection,
    cache: CacheAside,
    decoded: moka::sync::Cache<String, Arc<Decoded<E::Model>>>,
    entity: PhantomData<fn() -> E>,
}

impl<E: EntityTrait> Clone for ModelStore<E> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            cache: self.cache.clone(),
            decoded: self.decoded.clone(),
            entity: PhantomData,
        }
    }
}

impl<E> ModelStore<E>
where
    E: CachedEntity,
    E::Model: Serialize + DeserializeOwned + Clone + Send + Sync + IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    pub fn new(db: DatabaseConnection, cache: CacheAside) -> Self {
        Self {
            db,
            cache,
            decoded: moka::sync::Cache::new(MAX_DECODED_ROWS),
            entity: PhantomData,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn cache(&self) -> &CacheAside {
        &self.cache
    }

    /// Returns the row at cache key `key`, running the query that `query` builds (which must
    /// select that row) on a miss. The query is built only on a miss, because building a
    /// SeaORM select took a tenth of a cache hit's CPU.
    pub async fn find_by_key<Q>(
        &self,
        key: String,
        query: Q,
    ) -> Result<Option<E::Model>, ModelError>
    where
        Q: Fn() -> Select<E>,
    {
        let db = &self.db;
        let json = self
            .cache
            .fetch(&key, || async {
                let row = query().one(db).await?;
                row.map(|row| {
                    serde_json::to_string(&row).map_err(|err| DbErr::Json(err.to_string()))
                })
                .transpose()
            })
            .await
            .map_err(ModelError::Database)?;
        let Some(json) = json else { return Ok(None) };
        if let Some(decoded) = self.decoded.get(&key)
            && decoded.json == json
        {
            return Ok(Some(decoded.row.clone()));
        }
        match serde_json::from_str::<E::Model>(&json) {
            Ok(row) => {
                let decoded = Decoded {
                    json,
                    row: row.clone(),
                };
                self.decoded.insert(key, Arc::new(decoded));
                Ok(Some(row))
            }
            Err(error) => {
                // A row cached by an older build of the model: drop it and read the database.
                tracing::warn!(key, error = %error, "cached row does not decode; reading the database");
                self.invalidate_keys(vec![key]).await;
                Ok(query().one(&self.db).await?)
            }
        }
    }

    /// Inserts a row, then removes every cached key of the new row, including not-found
    /// placeholders.
    pub async fn insert(&self, row: E::ActiveModel) -> Result<E::Model, ModelError> {
        let row = row.insert(&self.db).await?;
        self.invalidate(&row).await;
        Ok(row)
    }

    /// Writes the columns where `new` differs from `old` to the row with `old`'s primary key and
    /// returns the row as stored.
    ///
    /// After the commit, the cache keys of `old`, of the row as it was in the database and of the
    /// updated row are removed, so a changed unique value is invalidated under both values.
    pub async fn update(&self, old: &E::Model, new: E::Model) -> Result<E::Model, ModelError> {
        let changed: Vec<E::Column> = E::Column::iter()
            .filter(|c| old.get(*c) != new.get(*c))
            .collect();
        if changed.is_empty() {
            return Ok(new);
        }
        let key = primary_key_condition::<E>(old);

        let txn = self.db.begin().await?;
        let Some(current) = lock_and_read::<E, _>(&txn, key.clone()).await? else {
            return Err(ModelError::NotFound { table: E::TABLE });
        };
        let mut update = E::update_many().filter(key);
        for column in &changed {
            update = update.col_expr(*column, Expr::val(new.get(*column)));
        }
        update.exec(&txn).await?;
        let updated = E::find()
            .filter(primary_key_condition::<E>(&new))
            .one(&txn)
            .await?
            .ok_or(ModelError::NotFound { table: E::TABLE })?;
        txn.commit().await?;

        let mut keys = E::cache_keys(&self.cache, old);
        keys.extend(E::cache_keys(&self.cache, &current));
        keys.extend(E::cache_keys(&self.cache, &updated));
        self.invalidate_keys(keys).await;
        Ok(updated)
    }

    /// Deletes the row with `row`'s primary key; returns whether it existed. Every cached key of
    /// the row is removed after the commit.
    pub async fn delete(&self, row: &E::Model) -> Result<bool, ModelError> {
        let key = primary_key_condition::<E>(row);
        let txn = self.db.begin().await?;
        let current = lock_and_read::<E, _>(&txn, key.clone()).await?;
        E::delete_many().filter(key).exec(&txn).await?;
        txn.commit().await?;

        let mut keys = E::cache_keys(&self.cache, row);
        if let Some(current) = &current {
            keys.extend(E::cache_keys(&self.cache, current));
        }
        self.invalidate_keys(keys).await;
        Ok(current.is_some())
    }

    /// Removes every cached key of `row`; call it after committing a write to the row made
    /// outside this store (for example in a transaction with other tables).
    pub async fn invalidate(&self, row: &E::Model) {
        self.invalidate_keys(E::cache_keys(&self.cache, row)).await;
    }

    /// Removes `keys` and their decoded rows from the cache.
    async fn invalidate_keys(&self, keys: Vec<String>) {
        for key in &keys {
            self.decoded.invalidate(key);
        }
        self.cache.invalidate(keys).await;
    }
}

/// Matches the row with `row`'s primary key.
fn primary_key_condition<E: EntityTrait>(row: &E::Model) -> Condition {
    E::PrimaryKey::iter().fold(Condition::all(), |condition, key| {
        let column = key.into_column();
        condition.add(column.eq(row.get(column)))
    })
}

/// Takes the write lock on the row matching `key` and reads it.
///
/// The lock is a no-op `UPDATE … SET pk = pk`, which every backend supports: it locks the row on
/// PostgreSQL and MySQL and takes SQLite's write lock (waiting out the busy timeout) before the
/// read, so the read sees the row no other writer can change until the commit.
async fn lock_and_read<E, C>(txn: &C, key: Condition) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    if let Some(primary) = E::PrimaryKey::iter().next() {
        let column = primary.into_column();
        E::update_many()
            .col_expr(column, column.into_expr())
            .filter(key.clone())
            .exec(txn)
            .await?;
    }
    E::find().filter(key).one(txn).await
}
