//! Measures SendMessage throughput and latency on 1:1 chats, and GetMessages latency on a
//! conversation of 10,000 messages, over real gRPC with the chat service running beside.
//!
//! ```text
//! cargo bench -p beehive-message --bench send                       # embedded SQLite
//! BENCH_REAL=1 BEEHIVE_TEST_POSTGRES_URL=… BEEHIVE_TEST_REDIS_URL=… \
//!   BEEHIVE_TEST_AMQP_URL=… cargo bench -p beehive-message --bench send
//! ```
//!
//! Knobs: `BENCH_SECS` (measured seconds, default 10), `BENCH_CONCURRENCY` (client tasks,
//! default 64), `BENCH_CONVERSATIONS` (1:1 chats, default 500).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use beehive_generated::pb::chat::CreateConversationRequest;
use beehive_generated::pb::message::{GetMessagesRequest, SendMessageRequest};
use beehive_runtime::bus::{Bus, InProcessBus, RabbitBus, RabbitConfig, RetryPolicy};
use hdrhistogram::Histogram;
use support::{Backends, Env};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn text(conversation_id: i64, sender_id: i64, n: u64) -> SendMessageRequest {
    SendMessageRequest {
        conversation_id,
        sender_id,
        content_type: 1,
        content: format!("benchmark message {n} with some ordinary text in it"),
        ..SendMessageRequest::default()
    }
}

fn report(label: &str, histogram: &Histogram<u64>, elapsed: Duration) {
    let count = histogram.len();
    println!(
        "{label}: {count} calls in {:.1} s = {:.0}/s; latency ms p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        histogram.value_at_quantile(0.50) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.value_at_quantile(0.999) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let real = std::env::var_os("BENCH_REAL").is_some();
    let (backends, bus): (Backends, Arc<dyn Bus>) = if real {
        let backends =
            Backends::real().expect("BENCH_REAL needs the PostgreSQL and Redis variables");
        let amqp = beehive_runtime::testing::backend_url("BEEHIVE_TEST_AMQP_URL")
            .expect("BENCH_REAL needs BEEHIVE_TEST_AMQP_URL");
        let mut config = RabbitConfig::new(amqp);
        config.exchange = format!("msgbench-{}", uuid::Uuid::new_v4().simple());
        (backends, Arc::new(RabbitBus::new(config).unwrap()))
    } else {
        (
            Backends::default(),
            Arc::new(InProcessBus::new(RetryPolicy::default())),
        )
    };
    let secs = env_number("BENCH_SECS", 10);
    let concurrency = env_number("BENCH_CONCURRENCY", 64);
    let conversations = env_number("BENCH_CONVERSATIONS", 500);
    println!(
        "backend: {}; {concurrency} client tasks, {conversations} 1:1 chats, {secs} s",
        if real {
            "PostgreSQL + Redis + RabbitMQ"
        } else {
            "SQLite + in-process cache and bus"
        }
    );

    let env = Env::start(&backends, bus).await;
    let mut chats = Vec::new();
    for n in 0..conversations as i64 {
        let (a, b) = (10_000 + 2 * n, 10_001 + 2 * n);
        env.friends.befriend(a, b);
        let id = env
            .chat
            .create_conversation(env.as_user(
                a,
                CreateConversationRequest {
                    r#type: 1,
                    owner_id: a,
                    member_ids: vec![b],
                    ..CreateConversationRequest::default()
                },
            ))
            .await
            .unwrap()
            .conversation_id;
        let token_a = env.auth.issue_user_token(a).unwrap();
        let token_b = env.auth.issue_user_token(b).unwrap();
        chats.push((id, a, b, token_a, token_b));
    }
    let chats = Arc::new(chats);

    // Warm-up: fills the membership cache and the connection pools.
    let clients = env.clients();
    for (n, (id, a, _, token_a, _)) in chats.iter().enumerate() {
        clients
            .send_with_token(text(*id, *a, n as u64), token_a)
            .await
            .unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let clients = env.clients();
        let chats = chats.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            let mut n = task;
            while Instant::now() < deadline {
                let (id, a, b, token_a, token_b) = &chats[(n as usize) % chats.len()];
                let (sender, token) = if n % 2 == 0 {
                    (a, token_a)
                } else {
                    (b, token_b)
                };
                let began = Instant::now();
                clients
                    .send_with_token(text(*id, *sender, n), token)
                    .await
                    .unwrap();
                histogram
                    .record(began.elapsed().as_micros() as u64)
                    .unwrap();
                n += concurrency;
            }
            histogram
        }));
    }
    let mut sends = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        sends.add(task.await.unwrap()).unwrap();
    }
    report("SendMessage", &sends, started.elapsed());

    // GetMessages on one conversation of 10,000 messages.
    let (id, a, b, _, _) = chats[0].clone();
    let existing = env
        .scalar(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = {id}"
        ))
        .await;
    let mut ids = Vec::new();
    let mut fill = Vec::new();
    for chunk in 0..16u64 {
        let clients = env.clients();
        let count = (10_000 - existing).max(0) as u64 / 16 + 1;
        fill.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..count {
                ids.push(
                    clients
                        .send(text(id, if n % 2 == 0 { a } else { b }, chunk * count + n))
                        .await
                        .unwrap(),
                );
            }
            ids
        }));
    }
    for task in fill {
        ids.extend(task.await.unwrap());
    }
    let total = env
        .scalar(&format!(
            "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = {id}"
        ))
        .await;
    println!("history conversation holds {total} messages");

    for (label, deep) in [
        ("GetMessages first page (limit 50)", false),
        ("GetMessages random page (limit 50)", true),
    ] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for task in 0..16u64 {
            let message = env.message.clone();
            let auth = env.auth.clone();
            let ids = ids.clone();
            tasks.push(tokio::spawn(async move {
                let token = auth.issue_user_token(a).unwrap();
                let mut histogram = Histogram::<u64>::new(3).unwrap();
                for n in 0..300u64 {
                    let before_id = if deep {
                        ids[((task * 7919 + n * 104_729) as usize) % ids.len()]
                    } else {
                        0
                    };
                    let mut request = tonic::Request::new(GetMessagesRequest {
                        conversation_id: id,
                        before_id,
                        limit: 50,
                    });
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                    let began = Instant::now();
                    message.get_messages(request).await.unwrap();
                    histogram
                        .record(began.elapsed().as_micros() as u64)
                        .unwrap();
                }
                histogram
            }));
        }
        let mut reads = Histogram::<u64>::new(3).unwrap();
        for task in tasks {
            reads.add(task.await.unwrap()).unwrap();
        }
        report(label, &reads, started.elapsed());
    }
    env.shutdown().await;
}
