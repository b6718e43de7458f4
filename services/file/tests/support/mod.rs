//! A file service on a loopback port over a temp data dir: on SQLite with an in-process cache,
//! or (when `BEEHIVE_TEST_POSTGRES_URL` is set) on a fresh PostgreSQL database, with Redis as the
//! cache when `BEEHIVE_TEST_REDIS_URL` is set too. Cache keys carry the unique database name.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use beehive_file::{FileDeps, FileService};
use beehive_generated::MessageLimits;
use beehive_generated::entity::{file_names, file_refs, files, multipart_parts, multipart_uploads};
use beehive_generated::file::FileClient;
use beehive_generated::migration::FileMigrator;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::cache::{Cache, CacheAside, MokaCache, RedisCache};
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::config::Config;
use beehive_runtime::db::{self, PoolOptions};
use beehive_runtime::server::{RunningServer, ServerBuilder};
use beehive_runtime::storage::{
    ByteStream, ContentHash, FileStore, LocalStore, StagedPart, StorageError, StoredObject,
    UploadId,
};
use beehive_runtime::testing::{POSTGRES_URL_VAR, REDIS_URL_VAR, backend_url};
use futures::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

/// Message limit of the test server and clients: a 10 MiB single upload fits.
pub const MESSAGE_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// Deadline of every call a test makes.
pub const CALL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// A database the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always, PostgreSQL too when its URL is set.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if backend_url(POSTGRES_URL_VAR).is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

/// A running file service and what a test needs to inspect it.
pub struct Harness {
    pub backend: Backend,
    pub client: FileClient,
    pub db: DatabaseConnection,
    pub store: Arc<CountingStore>,
    pub service: Arc<FileService>,
    pub data_dir: tempfile::TempDir,
    pub config: Config,
    auth: Authenticator,
    server: Option<RunningServer>,
    postgres_database: Option<(String, String)>,
}

impl Harness {
    /// Starts a service with the default `file.*` settings.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a service after `configure` adjusted the configuration.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: data_dir.path().to_owned(),
            ..Config::default()
        };
        configure(&mut config);

        let (url, postgres_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.path().join("file.db").display()),
                None,
            ),
            Backend::Postgres => {
                let server = backend_url(POSTGRES_URL_VAR).expect("PostgreSQL URL");
                let name = format!("beehive_file_{}", uuid::Uuid::new_v4().simple());
                let url = db::create_database(&server, &name)
                    .await
                    .expect("create PostgreSQL database");
                (url, Some((server, name)))
            }
        };
        let database = db::connect(
            &url,
            &PoolOptions {
                log_statements: std::env::var_os("BEEHIVE_TEST_SQL_LOG").is_some(),
                ..PoolOptions::default()
            },
        )
        .await
        .expect("connect");
        database.migrate::<FileMigrator>().await.expect("migrate");

        let store = Arc::new(CountingStore::new(
            LocalStore::open(data_dir.path()).await.expect("open store"),
        ));
        let cache: Arc<dyn Cache> = match (backend, backend_url(REDIS_URL_VAR)) {
            (Backend::Postgres, Some(redis_url)) => Arc::new(
                RedisCache::connect(&redis_url)
                    .await
                    .expect("connect Redis"),
            ),
            _ => Arc::new(MokaCache::new(10_000)),
        };
        let service = Arc::new(
            FileService::new(FileDeps {
                config: config.file.clone(),
                db: database.connection.clone(),
                store: store.clone(),
            })
            .with_cache(CacheAside::new(cache, database.name.clone())),
        );
        let config = Arc::new(config);
        let server = ServerBuilder::new(config.clone(), "file")
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .add_service(beehive_generated::file::server(
                service.clone(),
                MessageLimits::both(MESSAGE_LIMIT_BYTES),
            ))
            .start()
            .await
            .expect("start server");
        let channel =
            ServiceChannel::lazy(&format!("http://{}", server.local_addr())).expect("channel");
        let client = FileClient::with_limits(channel, MessageLimits::both(MESSAGE_LIMIT_BYTES));
        let auth = Authenticator::from_config(&config.auth).expect("authenticator");

        Self {
            backend,
            client,
            db: database.connection,
            store,
            service,
            data_dir,
            config: (*config).clone(),
            auth,
            server: Some(server),
            postgres_database,
        }
    }

    /// Wraps `message` in a request carrying a user token for `user_id`.
    pub fn as_user<T>(&self, user_id: i64, message: T) -> tonic::Request<T> {
        let token = self.auth.issue_user_token(user_id).expect("token");
        with_token(&token, message)
    }

    /// Wraps `message` in a request carrying a service token.
    pub fn as_service<T>(&self, message: T) -> tonic::Request<T> {
        let token = self.auth.issue_service_token().expect("token");
        with_token(&token, message)
    }

    pub async fn file_rows(&self) -> Vec<files::Model> {
        files::Entity::find()
            .all(&self.db)
            .await
            .expect("read files")
    }

    pub async fn ref_rows(&self) -> Vec<file_refs::Model> {
        file_refs::Entity::find()
            .all(&self.db)
            .await
            .expect("read file_refs")
    }

    pub async fn name_rows(&self) -> Vec<file_names::Model> {
        file_names::Entity::find()
            .all(&self.db)
            .await
            .expect("read file_names")
    }

    pub async fn upload_rows(&self) -> u64 {
        multipart_uploads::Entity::find()
            .count(&self.db)
            .await
            .expect("count uploads")
    }

    pub async fn part_rows(&self) -> u64 {
        multipart_parts::Entity::find()
            .count(&self.db)
            .await
            .expect("count parts")
    }

    /// Objects stored under `<data>/files/`, temp files excluded.
    pub fn stored_objects(&self) -> Vec<PathBuf> {
        let root = self.data_dir.path().join("files");
        let mut found = Vec::new();
        collect_files(&root, &mut found);
        found.retain(|path| !path.starts_with(root.join("tmp")));
        found
    }

    /// Staged upload directories under `<data>/uploads/`.
    pub fn staged_uploads(&self) -> usize {
        std::fs::read_dir(self.data_dir.path().join("uploads"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// Downloads a file through DownloadFile and returns its bytes and chunk sizes.
    pub async fn download(&self, user_id: i64, file_id: i64) -> (Vec<u8>, Vec<usize>) {
        let request = beehive_generated::pb::file::DownloadFileRequest {
            file_id,
            ..Default::default()
        };
        let mut stream = self
            .client
            .download_file(self.as_user(user_id, request))
            .await
            .expect("download");
        let mut bytes = Vec::new();
        let mut sizes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            assert_eq!(chunk.offset, bytes.len() as i64, "chunk offset");
            sizes.push(chunk.data.len());
            bytes.extend_from_slice(&chunk.data);
        }
        (bytes, sizes)
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("shutdown");
        }
        self.db.clone().close().await.ok();
        if let Some((server, name)) = self.postgres_database.take() {
            db::drop_database(&server, &name).await.ok();
        }
    }
}

fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    // Completing a 64 MiB upload in a debug build takes longer than the default 2 s deadline.
    request.set_timeout(CALL_DEADLINE);
    let value = format!("Bearer {token}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

fn collect_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Deterministic pseudo-random bytes, distinct per `seed`.
pub fn sample_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A [`LocalStore`] that counts the bytes written through it, so a test can assert that a call
/// wrote nothing.
pub struct CountingStore {
    inner: LocalStore,
    written: Arc<AtomicU64>,
    puts: AtomicU64,
}

impl CountingStore {
    fn new(inner: LocalStore) -> Self {
        Self {
            inner,
            written: Arc::new(AtomicU64::new(0)),
            puts: AtomicU64::new(0),
        }
    }

    /// Bytes streamed into `put`, `put_part` and `assemble` so far.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Calls of `put` so far.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::SeqCst)
    }

    fn counted(&self, data: ByteStream) -> ByteStream {
        let written = self.written.clone();
        data.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        })
        .boxed()
    }
}

#[async_trait]
impl FileStore for CountingStore {
    async fn put(&self, data: ByteStream) -> Result<StoredObject, StorageError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(self.counted(data)).await
    }

    async fn get(&self, hash: &ContentHash) -> Result<ByteStream, StorageError> {
        self.inner.get(hash).await
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        self.inner.exists(hash).await
    }

    async fn size(&self, hash: &ContentHash) -> Result<u64, StorageError> {
        self.inner.size(hash).await
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        self.inner.delete(hash).await
    }

    async fn put_part(
        &self,
        upload: &UploadId,
        number: u32,
        data: ByteStream,
    ) -> Result<StoredObject, StorageError> {
        self.inner
            .put_part(upload, number, self.counted(data))
            .await
    }

    async fn list_parts(&self, upload: &UploadId) -> Result<Vec<StagedPart>, StorageError> {
        self.inner.list_parts(upload).await
    }

    async fn assemble(
        &self,
        upload: &UploadId,
        parts: &[u32],
    ) -> Result<StoredObject, StorageError> {
        let stored = self.inner.assemble(upload, parts).await?;
        self.written.fetch_add(stored.size, Ordering::SeqCst);
        Ok(stored)
    }

    async fn discard_upload(&self, upload: &UploadId) -> Result<(), StorageError> {
        self.inner.discard_upload(upload).await
    }
}
