//! [`FileStore`] on a local directory: `<root>/files/<aa>/<bb>/<hash>` and
//! `<root>/uploads/<upload id>/<part>`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    ByteStream, ContentHash, FileStore, MAX_PART_NUMBER, StagedPart, StorageError, StoredObject,
    UploadId,
};

/// Size of the chunks [`LocalStore::get`] yields, in bytes.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Directory under `files/` for writes in progress. Its name never collides with a
/// two-hex-digit fan-out directory.
const TEMP_DIR: &str = "tmp";

/// Content-addressed storage in a directory tree under the data directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    files: PathBuf,
    uploads: PathBuf,
}

impl LocalStore {
    /// Opens (creating when missing) `<data_dir>/files` and `<data_dir>/uploads`.
    pub async fn open(data_dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let files = data_dir.as_ref().join("files");
        let uploads = data_dir.as_ref().join("uploads");
        create_dir_all(&files.join(TEMP_DIR)).await?;
        create_dir_all(&uploads).await?;
        Ok(Self { files, uploads })
    }

    /// Returns where an object lives; only a validated hash ever reaches this function.
    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.as_str();
        self.files.join(&hex[..2]).join(&hex[2..4]).join(hex)
    }

    fn upload_dir(&self, upload: &UploadId) -> PathBuf {
        self.uploads.join(upload.as_str())
    }

    fn part_path(&self, upload: &UploadId, number: u32) -> Result<PathBuf, StorageError> {
        if number == 0 || number > MAX_PART_NUMBER {
            return Err(StorageError::InvalidPartNumber(number));
        }
        Ok(self.upload_dir(upload).join(number.to_string()))
    }

    fn temp_path(&self) -> PathBuf {
        self.files
            .join(TEMP_DIR)
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Moves a finished temp file to its object path. Existing content is left as it is, since
    /// the same hash means the same bytes.
    async fn commit_object(
        &self,
        temp: &Path,
        written: Written,
    ) -> Result<StoredObject, StorageError> {
        let hash = ContentHash::from_digest(&written.digest);
        let target = self.object_path(&hash);
        if let Some(parent) = target.parent() {
            create_dir_all(parent).await?;
        }
        if fs::try_exists(&target).await.unwrap_or(false) {
            remove_quietly(temp).await;
        } else {
            fs::rename(temp, &target)
                .await
                .map_err(|source| io_error(&target, source))?;
        }
        tracing::debug!(hash = %hash, size = written.size, "stored object");
        Ok(StoredObject {
            hash,
            size: written.size,
        })
    }
}

#[async_trait]
impl FileStore for LocalStore {
    async fn put(&self, data: ByteStream) -> Result<StoredObject, StorageError> {
        let temp = self.temp_path();
        let written = match write_stream(&temp, data).await {
            Ok(written) => written,
            Err(err) => {
                remove_quietly(&temp).await;
                return Err(err);
            }
        };
        self.commit_object(&temp, written).await
    }

    async fn get(&self, hash: &ContentHash) -> Result<ByteStream, StorageError> {
        let path = self.object_path(hash);
        let file = match fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(StorageError::NotFound(hash.clone()));
            }
            Err(source) => return Err(io_error(&path, source)),
        };
        Ok(read_stream(file))
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        let path = self.object_path(hash);
        fs::try_exists(&path)
            .await
            .map_err(|source| io_error(&path, source))
    }

    async fn size(&self, hash: &ContentHash) -> Result<u64, StorageError> {
        let path = self.object_path(hash);
        match fs::metadata(&path).await {
            Ok(metadata) => Ok(metadata.len()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                Err(StorageError::NotFound(hash.clone()))
            }
            Err(source) => Err(io_error(&path, source)),
        }
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        let path = self.object_path(hash);
        match fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
            Err(source) => Err(io_error(&path, source)),
        }
    }

    async fn put_part(
        &self,
        upload: &UploadId,
        number: u32,
        data: ByteStream,
    ) -> Result<StoredObject, StorageError> {
        let target = self.part_path(upload, number)?;
        create_dir_all(&self.upload_dir(upload)).await?;

        // The temp file sits beside the part so the rename stays on one file system.
        let temp = self
            .upload_dir(upload)
            .join(format!(".{number}.{}", uuid::Uuid::new_v4().simple()));
        let written = match write_stream(&temp, data).await {
            Ok(written) => written,
            Err(err) => {
                remove_quietly(&temp).await;
                return Err(err);
            }
        };
        fs::rename(&temp, &target)
            .await
            .map_err(|source| io_error(&target, source))?;

        tracing::debug!(upload = %upload, part = number, size = written.size, "staged part");
        Ok(StoredObject {
            hash: ContentHash::from_digest(&written.digest),
            size: written.size,
        })
    }

    async fn list_parts(&self, upload: &UploadId) -> Result<Vec<StagedPart>, StorageError> {
        let dir = self.upload_dir(upload);
        let mut entries = match fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io_error(&dir, source)),
        };

        let mut parts = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|source| io_error(&dir, source))?
        {
            // Temp files start with a dot and never parse as a part number.
            let Some(number) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let metadata = entry
                .metadata()
                .await
                .map_err(|source| io_error(&entry.path(), source))?;
            parts.push(StagedPart {
                number,
                size: metadata.len(),
            });
        }
        parts.sort_by_key(|part| part.number);
        Ok(parts)
    }

    async fn assemble(
        &self,
        upload: &UploadId,
        parts: &[u32],
    ) -> Result<StoredObject, StorageError> {
        let mut sources = Vec::with_capacity(parts.len());
        for &number in parts {
            let path = self.part_path(upload, number)?;
            if !fs::try_exists(&path).await.unwrap_or(false) {
                return Err(StorageError::PartNotFound {
                    upload: upload.clone(),
                    part: number,
                });
            }
            sources.push(path);
        }

        let temp = self.temp_path();
        let written = match concatenate(&temp, &sources).await {
            Ok(written) => written,
            Err(err) => {
                remove_quietly(&temp).await;
                return Err(err);
            }
        };
        tracing::debug!(upload = %upload, parts = parts.len(), "assembled upload");
        self.commit_object(&temp, written).await
    }

    async fn discard_upload(&self, upload: &UploadId) -> Result<(), StorageError> {
        let dir = self.upload_dir(upload);
        match fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_error(&dir, source)),
        }
    }
}

/// Digest and length of bytes written to a file.
struct Written {
    digest: Vec<u8>,
    size: u64,
}

async fn write_stream(path: &Path, mut data: ByteStream) -> Result<Written, StorageError> {
    let mut file = fs::File::create(path)
        .await
        .map_err(|source| io_error(path, source))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(StorageError::Input)?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|source| io_error(path, source))?;
    }
    finish_file(path, file).await?;
    Ok(Written {
        digest: hasher.finalize().to_vec(),
        size,
    })
}

async fn concatenate(path: &Path, sources: &[PathBuf]) -> Result<Written, StorageError> {
    let mut file = fs::File::create(path)
        .await
        .map_err(|source| io_error(path, source))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; READ_CHUNK_BYTES];
    for source_path in sources {
        let mut source = fs::File::open(source_path)
            .await
            .map_err(|source| io_error(source_path, source))?;
        loop {
            let read = source
                .read(&mut buffer)
                .await
                .map_err(|source| io_error(source_path, source))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
            file.write_all(&buffer[..read])
                .await
                .map_err(|source| io_error(path, source))?;
        }
    }
    finish_file(path, file).await?;
    Ok(Written {
        digest: hasher.finalize().to_vec(),
        size,
    })
}

/// Flushes and syncs a file so the rename that follows never publishes unwritten data.
async fn finish_file(path: &Path, mut file: fs::File) -> Result<(), StorageError> {
    file.flush()
        .await
        .map_err(|source| io_error(path, source))?;
    file.sync_all()
        .await
        .map_err(|source| io_error(path, source))
}

fn read_stream(file: fs::File) -> ByteStream {
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buffer = BytesMut::zeroed(READ_CHUNK_BYTES);
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((Bytes::from(buffer), file)))
    })
    .boxed()
}

async fn create_dir_all(path: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(path)
        .await
        .map_err(|source| io_error(path, source))
}

async fn remove_quietly(path: &Path) {
    if let Err(err) = fs::remove_file(path).await
        && err.kind() != ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %err, "removing a temp file failed");
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_owned(),
        source,
    }
}
