//! Measures a multipart upload over loopback gRPC against `sha256sum` + `cp` of the same file.
//!
//! ```text
//! cargo run --release -p beehive-file --example upload_throughput -- [SIZE_MIB] [CONCURRENCY]
//! ```
//!
//! The file service runs in this process on 127.0.0.1 with SQLite and the local store in a temp
//! directory under `$TMPDIR`. The client hashes the file first (an upload declares its hash),
//! then sends 5 MiB parts with CONCURRENCY calls in flight and completes the upload. The baseline
//! runs `sha256sum` and then `cp` on the same file, one after the other; `cp` does not fsync,
//! while the store syncs every part and the assembled file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use beehive_file::{FileDeps, FileService};
use beehive_generated::MessageLimits;
use beehive_generated::file::FileClient;
use beehive_generated::migration::FileMigrator;
use beehive_generated::pb::file::{
    CompleteMultipartUploadRequest, InitMultipartUploadRequest, PartInfo, UploadPartRequest,
};
use beehive_runtime::auth::Authenticator;
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, PoolOptions};
use beehive_runtime::server::ServerBuilder;
use beehive_runtime::storage::LocalStore;
use futures::StreamExt;
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const DEFAULT_SIZE_MIB: u64 = 1024;
const DEFAULT_CONCURRENCY: usize = 4;
const MESSAGE_LIMIT_BYTES: usize = 16 * 1024 * 1024;
const USER_ID: i64 = 1;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args
        .next()
        .map_or(Ok(DEFAULT_SIZE_MIB), |arg| arg.parse())?;
    let concurrency: usize = args
        .next()
        .map_or(Ok(DEFAULT_CONCURRENCY), |arg| arg.parse())?;
    let size = size_mib * MIB;

    let work = tempfile::tempdir().context("create a temp dir")?;
    let source = work.path().join("source.bin");
    write_sample(&source, size)?;
    println!("file: {size_mib} MiB at {}", source.display());

    let baseline = run_baseline(&source, &work.path().join("copy.bin"))?;
    std::fs::remove_file(work.path().join("copy.bin")).ok();

    let data_dir = work.path().join("data");
    let mut config = Config {
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    config.file.max_upload_bytes = config.file.max_upload_bytes.max(size);
    let database = db::connect(
        &format!("sqlite://{}", data_dir.join("file.db").display()),
        &PoolOptions::default(),
    )
    .await?;
    database.migrate::<FileMigrator>().await?;
    let service = Arc::new(FileService::new(FileDeps {
        config: config.file.clone(),
        db: database.connection.clone(),
        store: Arc::new(LocalStore::open(&data_dir).await?),
    }));
    let config = Arc::new(config);
    let server = ServerBuilder::new(Arc::clone(&config), "file")
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .add_service(beehive_generated::file::server(
            service,
            MessageLimits::both(MESSAGE_LIMIT_BYTES),
        ))
        .start()
        .await?;
    let client = FileClient::with_limits(
        ServiceChannel::lazy(&format!("http://{}", server.local_addr()))?,
        MessageLimits::both(MESSAGE_LIMIT_BYTES),
    );
    let token = Authenticator::from_config(&config.auth)?.issue_user_token(USER_ID)?;

    let started = Instant::now();
    let hash = hash_file(&source)?;
    let client_hash = started.elapsed();

    let upload_started = Instant::now();
    let part_bytes = config.file.part_bytes;
    let total_parts = size.div_ceil(part_bytes).max(1);
    let init = InitMultipartUploadRequest {
        user_id: USER_ID,
        file_name: "source.bin".to_owned(),
        file_size: i64::try_from(size)?,
        file_type: "application/octet-stream".to_owned(),
        file_hash: hash.clone(),
        total_parts: i32::try_from(total_parts)?,
    };
    let upload_id = client
        .init_multipart_upload(authorized(&token, init))
        .await?
        .upload_id;
    let sends = futures::stream::iter(1..=total_parts).map(|number| {
        let client = client.clone();
        let token = token.clone();
        let upload_id = upload_id.clone();
        let source = source.clone();
        async move {
            let data = read_part(&source, number, part_bytes)?;
            let request = UploadPartRequest {
                upload_id,
                part_number: i32::try_from(number)?,
                part_data: data,
            };
            let etag = client.upload_part(authorized(&token, request)).await?.etag;
            anyhow::Ok(PartInfo {
                part_number: i32::try_from(number)?,
                etag,
            })
        }
    });
    let mut parts: Vec<PartInfo> = sends
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    parts.sort_by_key(|part| part.part_number);
    let parts_sent = upload_started.elapsed();
    let completed = client
        .complete_multipart_upload(authorized(
            &token,
            CompleteMultipartUploadRequest { upload_id, parts },
        ))
        .await?;
    let upload = upload_started.elapsed();
    if completed.file_hash != hash {
        bail!(
            "the stored file hashes to {} instead of {hash}",
            completed.file_hash
        );
    }
    server.shutdown().await?;

    let rate = |elapsed: Duration| size as f64 / MIB as f64 / elapsed.as_secs_f64();
    println!(
        "sha256sum + cp:        {:>8.2} s  {:>7.1} MiB/s (sha256sum {:.2} s, cp {:.2} s)",
        (baseline.0 + baseline.1).as_secs_f64(),
        rate(baseline.0 + baseline.1),
        baseline.0.as_secs_f64(),
        baseline.1.as_secs_f64()
    );
    println!(
        "upload (parts+complete): {:>6.2} s  {:>7.1} MiB/s (parts {:.2} s, complete {:.2} s), ratio {:.2}",
        upload.as_secs_f64(),
        rate(upload),
        parts_sent.as_secs_f64(),
        (upload - parts_sent).as_secs_f64(),
        (baseline.0 + baseline.1).as_secs_f64() / upload.as_secs_f64()
    );
    println!(
        "client hash + upload:  {:>8.2} s  {:>7.1} MiB/s, ratio {:.2}",
        (client_hash + upload).as_secs_f64(),
        rate(client_hash + upload),
        (baseline.0 + baseline.1).as_secs_f64() / (client_hash + upload).as_secs_f64()
    );
    Ok(())
}

fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(600));
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Times `sha256sum SOURCE`, then `cp SOURCE COPY`.
fn run_baseline(source: &Path, copy: &Path) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let status = Command::new("sha256sum").arg(source).output()?.status;
    let hashed = started.elapsed();
    if !status.success() {
        bail!("sha256sum failed: {status}");
    }
    let started = Instant::now();
    let status = Command::new("cp").arg(source).arg(copy).status()?;
    let copied = started.elapsed();
    if !status.success() {
        bail!("cp failed: {status}");
    }
    Ok((hashed, copied))
}

/// Writes `size` pseudo-random bytes (xorshift), which no file system compresses.
fn write_sample(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..size / MIB {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(())
}

fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; MIB as usize];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn read_part(path: &Path, number: u64, part_bytes: u64) -> anyhow::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let start = (number - 1) * part_bytes;
    let length = file.metadata()?.len().saturating_sub(start).min(part_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut data = vec![0u8; usize::try_from(length)?];
    file.read_exact(&mut data)?;
    Ok(data)
}
