//! Criterion bench of SendMessage's logic without gRPC: input checks, the cached membership
//! answer, `seq` allocation and the group-committed insert on a SQLite file in WAL mode, the way
//! `beehive up` stores messages.
//!
//! ```text
//! cargo bench -p beehive-message --bench send_logic
//! ```
//!
//! `send_one` is one send alone, so its time includes a whole commit. `send_64_concurrent`
//! starts 64 sends at once into 64 conversations; the writer commits them together, which is
//! how `seq` allocation runs under load (one counter upsert for the batch).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use beehive_generated::message::rpc;
use beehive_generated::migration::MessageMigrator;
use beehive_generated::pb::message::SendMessageRequest;
use beehive_message::membership::MemberStatus;
use beehive_message::{Membership, MemoryHotCache, MessageDeps, MessageService};
use beehive_runtime::config::Config;
use beehive_runtime::context::Caller;
use beehive_runtime::db::{PoolOptions, connect};
use beehive_runtime::{CallContext, Handle, ServiceError};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sea_orm_migration::MigratorTrait;

/// Sender of every benchmark message.
const SENDER: i64 = 1;
/// Conversations written to at once by `send_64_concurrent`.
const CONCURRENT: i64 = 64;

/// Every user is a member of every conversation, as a warm membership cache reports it.
struct EveryoneIsMember;

#[async_trait]
impl Membership for EveryoneIsMember {
    async fn check_member(
        &self,
        _ctx: &CallContext,
        _conversation_id: i64,
        _user_id: i64,
    ) -> Result<MemberStatus, ServiceError> {
        Ok(MemberStatus::Member)
    }
}

fn request(conversation_id: i64, number: i64) -> SendMessageRequest {
    SendMessageRequest {
        conversation_id,
        sender_id: SENDER,
        content_type: 1,
        content: format!("benchmark message {number}"),
        extra_data: String::new(),
        client_msg_id: String::new(),
    }
}

fn context() -> CallContext {
    CallContext::internal(Caller::User(SENDER), Duration::from_secs(30))
}

fn send_logic(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let service = runtime.block_on(async {
        let database = connect(&url, &PoolOptions::default())
            .await
            .expect("open SQLite");
        MessageMigrator::up(&database.connection, None)
            .await
            .expect("migrate");
        let config = Config::default().message;
        Arc::new(MessageService::new(MessageDeps {
            db: database.connection,
            members: Arc::new(EveryoneIsMember),
            hot: Arc::new(MemoryHotCache::new(1_000, Duration::from_secs(60))),
            config,
        }))
    });
    let number = AtomicI64::new(0);

    let mut group = c.benchmark_group("send_logic_sqlite");
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_one", |b| {
        b.to_async(&runtime).iter(|| async {
            let n = number.fetch_add(1, Ordering::Relaxed);
            let sent = <MessageService as Handle<rpc::SendMessage>>::handle(
                &service,
                context(),
                request(1, n),
            )
            .await
            .expect("send");
            assert!(sent.message_id > 0);
        });
    });

    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function("send_64_concurrent", |b| {
        b.to_async(&runtime).iter(|| async {
            let sends = (1..=CONCURRENT).map(|conversation_id| {
                let service = Arc::clone(&service);
                let n = number.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    <MessageService as Handle<rpc::SendMessage>>::handle(
                        &service,
                        context(),
                        request(conversation_id, n),
                    )
                    .await
                })
            });
            for sent in futures::future::join_all(sends).await {
                let sent = sent.expect("send task").expect("send");
                assert!(sent.message_id > 0);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, send_logic);
criterion_main!(benches);
