//! Content-addressed file storage and the staging area for multipart uploads.
//!
//! Objects are keyed by the lowercase hex SHA-256 of their bytes, so the same content is stored
//! once and no caller-supplied name ever becomes part of a path. Every write streams through a
//! hasher into a temporary file and is moved into place with one atomic rename, so a reader sees
//! either the whole object or nothing. Multipart uploads stage their parts under an upload id
//! (validated as hex or a UUID) and are assembled into the store as a stream, never in memory.
//!
//! [`LocalStore`] keeps everything under the data directory; object stores can implement the
//! same [`FileStore`] trait later.

mod local;

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use local::LocalStore;

/// A stream of byte chunks, as read from a request or from the store.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Length of a SHA-256 digest in hex characters.
const HASH_HEX_LEN: usize = 64;
/// Longest accepted upload id, in characters.
const MAX_UPLOAD_ID_LEN: usize = 64;
/// Highest multipart part number (the same bound S3 uses).
pub const MAX_PART_NUMBER: u32 = 10_000;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid content hash {0:?}: expected 64 hex characters")]
    InvalidHash(String),
    #[error("invalid upload id {0:?}: expected 1 to 64 characters of hex digits and dashes")]
    InvalidUploadId(String),
    #[error("invalid part number {0}: expected 1 to {MAX_PART_NUMBER}")]
    InvalidPartNumber(u32),
    #[error("object {0} not found")]
    NotFound(ContentHash),
    #[error("part {part} of upload {upload} not found")]
    PartNotFound { upload: UploadId, part: u32 },
    #[error("reading the input stream failed")]
    Input(#[source] std::io::Error),
    #[error("I/O on {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lowercase hex SHA-256 of an object's bytes; the only key the store accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    /// Parses a hex SHA-256, normalising uppercase digits to lowercase.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        let valid = text.len() == HASH_HEX_LEN && text.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(StorageError::InvalidHash(text.to_owned()));
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// Builds the key from a finished SHA-256 digest.
    pub fn from_digest(digest: &[u8]) -> Self {
        Self(hex::encode(digest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a multipart upload: hex digits and dashes only, so it can name a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// Parses an upload id such as a UUID or a hex token, lowercasing it.
    pub fn parse(text: &str) -> Result<Self, StorageError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_UPLOAD_ID_LEN
            && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            && text.bytes().any(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(StorageError::InvalidUploadId(text.to_owned()));
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// Creates a fresh random id (a UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Result of a write: the content hash and the size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub hash: ContentHash,
    pub size: u64,
}

/// A staged part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPart {
    pub number: u32,
    pub size: u64,
}

/// Content-addressed object storage with a multipart staging area.
///
/// Implementations must make every write atomic (a reader never sees a partial object) and must
/// never derive a path from anything but a [`ContentHash`], an [`UploadId`] or a part number.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Streams `data` into the store and returns its hash and size. Storing content that is
    /// already present succeeds and leaves the existing object untouched.
    async fn put(&self, data: ByteStream) -> Result<StoredObject, StorageError>;

    /// Opens an object for reading as a stream of chunks.
    async fn get(&self, hash: &ContentHash) -> Result<ByteStream, StorageError>;

    /// Reports whether an object exists.
    async fn exists(&self, hash: &ContentHash) -> Result<bool, StorageError>;

    /// Returns an object's size in bytes, or [`StorageError::NotFound`].
    async fn size(&self, hash: &ContentHash) -> Result<u64, StorageError>;

    /// Deletes an object; returns whether it existed.
    async fn delete(&self, hash: &ContentHash) -> Result<bool, StorageError>;

    /// Stages part `number` of an upload, replacing an earlier part with the same number, and
    /// returns the part's own hash (its etag) and size.
    async fn put_part(
        &self,
        upload: &UploadId,
        number: u32,
        data: ByteStream,
    ) -> Result<StoredObject, StorageError>;

    /// Lists the staged parts of an upload in part-number order (empty when none exist).
    async fn list_parts(&self, upload: &UploadId) -> Result<Vec<StagedPart>, StorageError>;

    /// Concatenates the listed parts, in the given order, into a new object, hashing on the
    /// way. The staged parts stay until [`FileStore::discard_upload`] is called, so a caller can
    /// still reject the result (for example when the hash differs from the declared one).
    async fn assemble(
        &self,
        upload: &UploadId,
        parts: &[u32],
    ) -> Result<StoredObject, StorageError>;

    /// Removes every staged part of an upload; succeeds when none exist.
    async fn discard_upload(&self, upload: &UploadId) -> Result<(), StorageError>;
}
