//! Measures Login throughput against the bcrypt limit, and GetUserInfo latency idle and while
//! logins keep every core busy.
//!
//! Run with `cargo run --release -p beehive-user --example login_bench [seconds]`. It serves the
//! user service on 127.0.0.1 (SQLite in a temp dir, in-process cache, bcrypt cost 12) and drives
//! it over gRPC from the same process. The bcrypt limit is `cores / t`, where `t` is the median
//! time of one cost-12 verification on one thread measured first.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use beehive_generated::MessageLimits;
use beehive_generated::migration::UserMigrator;
use beehive_generated::pb::user::{
    GetUserInfoRequest, LoginRequest, RegisterRequest, SendCodeRequest,
};
use beehive_generated::user::UserClient;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::cache::MokaCache;
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, PoolOptions};
use beehive_runtime::mail::{FileMailer, latest_code, parse_mailbox};
use beehive_runtime::server::ServerBuilder;
use beehive_user::{UserDeps, UserService};
use hdrhistogram::Histogram;

const BCRYPT_COST: u32 = 12;
const PASSWORD: &str = "correct horse battery";
/// Accounts logging in; each login client cycles through them.
const ACCOUNTS: usize = 8;
/// Concurrent login clients: enough to keep every hashing permit busy.
const LOGIN_CLIENTS: usize = 8;
/// Deadline each login sends, long enough for its wait behind the other clients' hashes.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Single-thread hash timings taken to estimate the limit.
const HASH_SAMPLES: usize = 9;
/// Sequential GetUserInfo calls per latency measurement.
const INFO_CALLS: usize = 4_000;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse())
        .transpose()
        .context("the argument is the login phase length in seconds")?
        .unwrap_or(10);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(Duration::from_secs(seconds)))
}

async fn run(login_phase: Duration) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let hash_time = median_hash_time()?;
    let limit = cores as f64 / hash_time.as_secs_f64();
    println!(
        "cores: {cores}; one bcrypt-{BCRYPT_COST} verification: {:.1} ms (median of {HASH_SAMPLES}); limit: {limit:.2} logins/s",
        hash_time.as_secs_f64() * 1000.0
    );
    let raw = raw_parallel_rate(cores, login_phase / 2)?;
    println!(
        "bare bcrypt on {cores} threads, no server: {raw:.2} verifications/s ({:.3} of the limit)",
        raw / limit
    );

    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.auth.bcrypt_cost = BCRYPT_COST;
    config.auth.jwt_secret = "benchmark-secret-of-32-bytes-long".to_owned();
    let config = Arc::new(config);
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let database = db::connect(&url, &PoolOptions::default()).await?;
    database.migrate::<UserMigrator>().await?;
    let authenticator = Arc::new(Authenticator::from_config(&config.auth)?);
    let mail_dir = dir.path().join("outbox");
    let mailer = Arc::new(FileMailer::open(
        &mail_dir,
        parse_mailbox(&config.mail.from)?,
    )?);
    let service = UserService::new(UserDeps {
        config: config.clone(),
        db: database.connection.clone(),
        db_name: database.name.clone(),
        cache: Arc::new(MokaCache::new(10_000)),
        mailer,
        authenticator: authenticator.clone(),
    });
    let server = ServerBuilder::new(config.clone(), "user")
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .authenticator(authenticator.clone())
        .add_service(beehive_generated::user::server(
            Arc::new(service),
            MessageLimits::default(),
        ))
        .start()
        .await?;
    let client = UserClient::new(ServiceChannel::lazy(&format!(
        "http://{}",
        server.local_addr()
    ))?);

    let mut accounts = Vec::new();
    for index in 0..ACCOUNTS {
        let username = format!("bench{index}");
        let email = format!("{username}@example.com");
        let code_request = SendCodeRequest {
            email: email.clone(),
            purpose: "register".to_owned(),
        };
        client
            .send_verification_code(tonic::Request::new(code_request))
            .await?;
        let code = latest_code(&mail_dir, &email)?.context("no code mailed")?;
        let register = RegisterRequest {
            username: username.clone(),
            email,
            password: PASSWORD.to_owned(),
            code,
        };
        let registered = client.register(tonic::Request::new(register)).await?;
        accounts.push((registered.user_id, username));
    }
    let reader_token = authenticator.issue_user_token(accounts[0].0)?;
    let target = accounts[0].0;

    // Warm-up, then the idle latency.
    info_latency(&client, &reader_token, target, INFO_CALLS / 4).await?;
    let idle = info_latency(&client, &reader_token, target, INFO_CALLS).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..LOGIN_CLIENTS {
        let client = client.clone();
        let stop = stop.clone();
        let logins = logins.clone();
        let failures = failures.clone();
        let names: Vec<String> = accounts.iter().map(|(_, name)| name.clone()).collect();
        tasks.push(tokio::spawn(async move {
            let mut turn = worker;
            while !stop.load(Ordering::Relaxed) {
                let request = LoginRequest {
                    account: names[turn % names.len()].clone(),
                    password: PASSWORD.to_owned(),
                };
                turn += 1;
                let mut request = tonic::Request::new(request);
                request.set_timeout(LOGIN_TIMEOUT);
                match client.login(request).await {
                    Ok(_) => logins.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    // Let the login queue fill before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let counted_from = logins.load(Ordering::Relaxed);
    let loaded = info_latency(&client, &reader_token, target, INFO_CALLS).await?;
    let remaining = login_phase.saturating_sub(started.elapsed());
    tokio::time::sleep(remaining).await;
    let elapsed = started.elapsed();
    let counted = logins.load(Ordering::Relaxed) - counted_from;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let rate = counted as f64 / elapsed.as_secs_f64();

    println!(
        "logins: {counted} in {:.1} s = {rate:.2}/s ({} failed); ratio to limit: {:.3} (target >= 0.9); ratio to bare bcrypt: {:.3}",
        elapsed.as_secs_f64(),
        failures.load(Ordering::Relaxed),
        rate / limit,
        rate / raw
    );
    println!(
        "GetUserInfo idle:   p50 {} us, p99 {} us, max {} us ({INFO_CALLS} sequential calls)",
        idle.value_at_quantile(0.5),
        idle.value_at_quantile(0.99),
        idle.max()
    );
    println!(
        "GetUserInfo loaded: p50 {} us, p99 {} us, max {} us; p99 ratio {:.2} (target <= 2)",
        loaded.value_at_quantile(0.5),
        loaded.value_at_quantile(0.99),
        loaded.max(),
        loaded.value_at_quantile(0.99) as f64 / idle.value_at_quantile(0.99) as f64
    );
    server.shutdown().await?;
    Ok(())
}

/// Median time of one bcrypt verification at [`BCRYPT_COST`] on this thread.
fn median_hash_time() -> anyhow::Result<Duration> {
    let hash = bcrypt::hash(PASSWORD, BCRYPT_COST)?;
    let mut samples = Vec::with_capacity(HASH_SAMPLES);
    for _ in 0..HASH_SAMPLES {
        let started = Instant::now();
        bcrypt::verify(PASSWORD, &hash)?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples[HASH_SAMPLES / 2])
}

/// Verifications per second of `threads` threads running bcrypt alone for `length`, which
/// shows what the machine gives right now when other processes share its cores.
fn raw_parallel_rate(threads: usize, length: Duration) -> anyhow::Result<f64> {
    let hash = bcrypt::hash(PASSWORD, BCRYPT_COST)?;
    let started = Instant::now();
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while started.elapsed() < length {
                    if bcrypt::verify(PASSWORD, &hash).is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Latencies in microseconds of `calls` sequential GetUserInfo calls.
async fn info_latency(
    client: &UserClient,
    token: &str,
    user_id: i64,
    calls: usize,
) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new(3)?;
    for _ in 0..calls {
        let mut request = tonic::Request::new(GetUserInfoRequest { user_id });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let started = Instant::now();
        client.get_user_info(request).await?;
        histogram.record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))?;
    }
    Ok(histogram)
}
