//! The output of the schema fixtures (checked in under `tests/fixtures/`) compiles, and its
//! migrations and models work with keyword and odd names on SQLite, PostgreSQL and MariaDB.

#[rustfmt::skip]
mod fixtures;

use std::sync::Arc;

use beehive_runtime::cache::{CacheAside, MokaCache};
use beehive_runtime::db::{self, Database, PoolOptions};
use beehive_runtime::testing::{MYSQL_URL_VAR, POSTGRES_URL_VAR, backend_url};
use fixtures::{keys, keywords, nullable};
use sea_orm::{ActiveValue::Set, EntityTrait};
use sea_orm_migration::MigratorTrait;

async fn run_fixtures(db: &Database) {
    // Each fixture records its progress in its own table, so three schemas share one database.
    keywords::migration::KeywordsMigrator::up(&db.connection, None)
        .await
        .unwrap();
    nullable::migration::NullableMigrator::up(&db.connection, None)
        .await
        .unwrap();
    keys::migration::KeysMigrator::up(&db.connection, None)
        .await
        .unwrap();
    let cache = CacheAside::new(Arc::new(MokaCache::default()), db.name.clone());

    let orders = keywords::model::OrderModel::new(db.connection.clone(), cache.clone());
    let order = orders
        .insert(keywords::entity::order::ActiveModel {
            r#type: Set(3),
            key: Set("k-1".to_owned()),
            select: Set("chosen".to_owned()),
            user_id: Set(7),
            first_name: Set(Some("Ada".to_owned())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(order.order, 0);
    assert_eq!(order.self_column, "");
    assert!(!order.r#match);
    assert!(!order.column_2fa);
    assert_eq!(
        orders.find_one_by_key("k-1").await.unwrap().as_ref(),
        Some(&order)
    );

    let mut renamed = order.clone();
    renamed.key = "k-2".to_owned();
    renamed.order = 5;
    let renamed = orders.update(&order, renamed).await.unwrap();
    assert_eq!(orders.find_one_by_key("k-1").await.unwrap(), None);
    assert_eq!(
        orders.find_one_by_key("k-2").await.unwrap().as_ref(),
        Some(&renamed)
    );
    assert_eq!(renamed.order, 5);

    let types = keywords::model::TypeModel::new(db.connection.clone(), cache.clone());
    let row = types
        .insert(keywords::entity::r#type::ActiveModel {
            id: Set("a1b2".to_owned()),
            r#gen: Set(1),
            r#where: Set("a,b%c".to_owned()),
            index: Set(2),
            unique: Set(3),
            table: Set(4),
        })
        .await
        .unwrap();
    assert_eq!(types.find_one("a1b2").await.unwrap().as_ref(), Some(&row));
    assert_eq!(
        types
            .find_one_by_gen_and_where(1, "a,b%c")
            .await
            .unwrap()
            .as_ref(),
        Some(&row)
    );
    assert!(types.delete(&row).await.unwrap());
    assert_eq!(types.find_one("a1b2").await.unwrap(), None);

    let samples = nullable::model::SamplesModel::new(db.connection.clone(), cache.clone());
    let empty = samples
        .insert(nullable::entity::samples::ActiveModel::default())
        .await
        .unwrap();
    let second = samples
        .insert(nullable::entity::samples::ActiveModel::default())
        .await
        .unwrap();
    assert_eq!(empty.label, None);
    assert_eq!(empty.document, None);
    assert_ne!(empty.id, second.id);
    assert_eq!(samples.find_one_by_label("x").await.unwrap(), None);

    let counter = keys::entity::counters::ActiveModel {
        name: Set("visits".to_owned()),
        ..Default::default()
    };
    keys::entity::counters::Entity::insert(counter)
        .exec(&db.connection)
        .await
        .unwrap();
    let stored = keys::entity::counters::Entity::find_by_id("visits".to_owned())
        .one(&db.connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value, 0);
}

#[tokio::test]
async fn fixtures_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/fixtures.db", dir.path().display());
    let db = db::connect(&url, &PoolOptions::default()).await.unwrap();
    run_fixtures(&db).await;
}

async fn on_server(var: &str) {
    let Some(server_url) = backend_url(var) else {
        return;
    };
    let name = format!("beehive_fixture_{}", uuid::Uuid::new_v4().simple());
    let url = db::create_database(&server_url, &name).await.unwrap();
    let db = db::connect(&url, &PoolOptions::default()).await.unwrap();
    run_fixtures(&db).await;
    db.connection.close().await.unwrap();
    db::drop_database(&server_url, &name).await.unwrap();
}

#[tokio::test]
async fn fixtures_on_postgres() {
    on_server(POSTGRES_URL_VAR).await;
}

#[tokio::test]
async fn fixtures_on_mysql() {
    on_server(MYSQL_URL_VAR).await;
}
