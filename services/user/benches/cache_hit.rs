//! Criterion bench of the cache-aside hit path: `UsersModel::find_one` on a row already in the
//! in-process (moka) cache, as GetUserInfo reads it. A hit builds the key, reads the cache and
//! decodes the cached JSON; it never touches the database.
//!
//! ```text
//! cargo bench -p beehive-user --bench cache_hit
//! ```

use std::sync::Arc;

use beehive_generated::entity::users;
use beehive_generated::migration::UserMigrator;
use beehive_generated::model::users::UsersModel;
use beehive_runtime::cache::{CacheAside, MokaCache};
use criterion::{Criterion, criterion_group, criterion_main};
use sea_orm::{ActiveModelTrait, ActiveValue, Database};
use sea_orm_migration::MigratorTrait;

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (model, id) = runtime.block_on(async {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        UserMigrator::up(&db, None).await.expect("migrate");
        let now = chrono::Utc::now();
        let row = users::ActiveModel {
            username: ActiveValue::Set("bench".to_owned()),
            email: ActiveValue::Set("bench@example.com".to_owned()),
            password_hash: ActiveValue::Set("x".repeat(60)),
            nickname: ActiveValue::Set("Bench User".to_owned()),
            status: ActiveValue::Set(0),
            email_verified: ActiveValue::Set(true),
            created_at: ActiveValue::Set(now),
            updated_at: ActiveValue::Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .expect("insert user");
        let cache = CacheAside::new(Arc::new(MokaCache::new(10_000)), "bench");
        let model = UsersModel::new(db, cache);
        // The first read fills the cache.
        let found = model.find_one(row.id).await.expect("first read");
        assert_eq!(found.map(|user| user.id), Some(row.id));
        (model, row.id)
    });

    c.bench_function("users_find_one_moka_hit", |b| {
        b.to_async(&runtime).iter(|| async {
            let user = model.find_one(id).await.expect("cached read");
            assert!(user.is_some());
        });
    });
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
