//! The file store on a local directory: layout, validation, atomicity and multipart assembly.

use beehive_runtime::storage::{
    ByteStream, ContentHash, FileStore, LocalStore, StagedPart, StorageError, UploadId,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

fn stream_of(chunks: Vec<Vec<u8>>) -> ByteStream {
    futures::stream::iter(chunks.into_iter().map(|chunk| Ok(Bytes::from(chunk)))).boxed()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn read_all(store: &LocalStore, hash: &ContentHash) -> Vec<u8> {
    let chunks: Vec<Bytes> = store.get(hash).await.unwrap().try_collect().await.unwrap();
    chunks.concat()
}

/// Lists every file below `dir`, recursively and sorted.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn put_stores_under_hash_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();

    let stored = store
        .put(stream_of(vec![b"hello ".to_vec(), b"world".to_vec()]))
        .await
        .unwrap();

    let expected = sha256_hex(b"hello world");
    assert_eq!(stored.hash.as_str(), expected);
    assert_eq!(stored.size, 11);
    let path = dir
        .path()
        .join("files")
        .join(&expected[..2])
        .join(&expected[2..4])
        .join(&expected);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    assert_eq!(store.object_path(&stored.hash), path);
    assert!(store.exists(&stored.hash).await.unwrap());
    assert_eq!(store.size(&stored.hash).await.unwrap(), 11);
    assert_eq!(read_all(&store, &stored.hash).await, b"hello world");
}

#[tokio::test]
async fn same_content_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();

    let first = store.put(stream_of(vec![b"same".to_vec()])).await.unwrap();
    let second = store
        .put(stream_of(vec![b"sa".to_vec(), b"me".to_vec()]))
        .await
        .unwrap();

    assert_eq!(first, second);
    let objects: Vec<_> = files_under(&dir.path().join("files"));
    assert_eq!(objects, vec![store.object_path(&first.hash)]);
}

#[tokio::test]
async fn large_object_reads_back_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();

    let stored = store
        .put(stream_of(data.chunks(7_000).map(<[u8]>::to_vec).collect()))
        .await
        .unwrap();

    let chunks: Vec<Bytes> = store
        .get(&stored.hash)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        chunks.len() > 1,
        "expected several chunks, got {}",
        chunks.len()
    );
    assert_eq!(chunks.concat(), data);
    assert_eq!(stored.hash.as_str(), sha256_hex(&data));
}

#[tokio::test]
async fn delete_removes_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let stored = store.put(stream_of(vec![b"gone".to_vec()])).await.unwrap();

    assert!(store.delete(&stored.hash).await.unwrap());
    assert!(!store.delete(&stored.hash).await.unwrap());
    assert!(!store.exists(&stored.hash).await.unwrap());
    assert!(matches!(
        store.size(&stored.hash).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&stored.hash).await.err(),
        Some(StorageError::NotFound(_))
    ));
}

#[test]
fn hash_parsing_rejects_paths() {
    let attempts = [
        "",
        "..",
        "../../etc/passwd",
        "/etc/passwd",
        "aa/bb",
        &"a".repeat(63),
        &"a".repeat(65),
        &format!("{}/", "a".repeat(63)),
        &format!("{}g", "a".repeat(63)),
        &format!("..{}", "a".repeat(62)),
    ];
    for attempt in attempts {
        assert!(
            matches!(
                ContentHash::parse(attempt),
                Err(StorageError::InvalidHash(_))
            ),
            "{attempt:?} was accepted"
        );
    }

    let upper = "ABCDEF".repeat(10) + "ABCD";
    assert_eq!(
        ContentHash::parse(&upper).unwrap().as_str(),
        upper.to_lowercase()
    );
}

#[test]
fn upload_id_parsing_rejects_paths() {
    let attempts = [
        "", "..", "../x", "a/b", "a\\b", "%2e%2e", "-", "---", "abc.def", "abc\0", "zz",
    ];
    for attempt in attempts {
        assert!(
            matches!(
                UploadId::parse(attempt),
                Err(StorageError::InvalidUploadId(_))
            ),
            "{attempt:?} was accepted"
        );
    }
    assert!(UploadId::parse(&"f".repeat(65)).is_err());

    let uuid = "5F0C8A0E-1B2C-4D3E-8F9A-0B1C2D3E4F5A";
    assert_eq!(UploadId::parse(uuid).unwrap().as_str(), uuid.to_lowercase());
    assert_eq!(UploadId::parse("00ff").unwrap().as_str(), "00ff");
}

#[tokio::test]
async fn failed_stream_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let broken: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial data")),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed();

    let result = store.put(broken).await;

    assert!(matches!(result, Err(StorageError::Input(_))), "{result:?}");
    assert_eq!(
        files_under(&dir.path().join("files")),
        Vec::<std::path::PathBuf>::new()
    );
    let partial = ContentHash::from_digest(&Sha256::digest(b"partial data"));
    assert!(!store.exists(&partial).await.unwrap());
}

#[tokio::test]
async fn parts_assemble_in_given_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let upload = UploadId::generate();
    let parts: [&[u8]; 3] = [b"first-", b"second-", b"third"];

    for (index, part) in parts.iter().enumerate() {
        let number = index as u32 + 1;
        let staged = store
            .put_part(&upload, number, stream_of(vec![part.to_vec()]))
            .await
            .unwrap();
        assert_eq!(staged.hash.as_str(), sha256_hex(part));
        assert_eq!(staged.size, part.len() as u64);
    }
    assert_eq!(
        store.list_parts(&upload).await.unwrap(),
        vec![
            StagedPart { number: 1, size: 6 },
            StagedPart { number: 2, size: 7 },
            StagedPart { number: 3, size: 5 },
        ]
    );

    let assembled = store.assemble(&upload, &[1, 2, 3]).await.unwrap();

    assert_eq!(assembled.hash.as_str(), sha256_hex(b"first-second-third"));
    assert_eq!(assembled.size, 18);
    assert_eq!(
        read_all(&store, &assembled.hash).await,
        b"first-second-third"
    );

    store.discard_upload(&upload).await.unwrap();
    assert!(!dir.path().join("uploads").join(upload.as_str()).exists());
    assert_eq!(store.list_parts(&upload).await.unwrap(), Vec::new());
}

#[tokio::test]
async fn restaged_part_replaces_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let upload = UploadId::generate();

    store
        .put_part(&upload, 1, stream_of(vec![b"old".to_vec()]))
        .await
        .unwrap();
    store
        .put_part(&upload, 1, stream_of(vec![b"newer".to_vec()]))
        .await
        .unwrap();

    assert_eq!(
        store.list_parts(&upload).await.unwrap(),
        vec![StagedPart { number: 1, size: 5 }]
    );
    let assembled = store.assemble(&upload, &[1]).await.unwrap();
    assert_eq!(read_all(&store, &assembled.hash).await, b"newer");
}

#[tokio::test]
async fn assembly_with_missing_part_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let upload = UploadId::generate();
    store
        .put_part(&upload, 1, stream_of(vec![b"a".to_vec()]))
        .await
        .unwrap();

    let result = store.assemble(&upload, &[1, 2]).await;

    assert!(
        matches!(result, Err(StorageError::PartNotFound { part: 2, .. })),
        "{result:?}"
    );
    assert_eq!(
        files_under(&dir.path().join("files")),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn part_numbers_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let upload = UploadId::generate();

    for number in [0, 10_001, u32::MAX] {
        let result = store
            .put_part(&upload, number, stream_of(vec![b"x".to_vec()]))
            .await;
        assert!(
            matches!(result, Err(StorageError::InvalidPartNumber(n)) if n == number),
            "{number}: {result:?}"
        );
    }
    assert!(!dir.path().join("uploads").join(upload.as_str()).exists());
}

#[tokio::test]
async fn concurrent_puts_of_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LocalStore::open(dir.path()).await.unwrap());
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = std::sync::Arc::clone(&store);
        let chunks: Vec<Vec<u8>> = data.chunks(4_096).map(<[u8]>::to_vec).collect();
        tasks.push(tokio::spawn(
            async move { store.put(stream_of(chunks)).await },
        ));
    }
    let mut hashes = Vec::new();
    for task in tasks {
        hashes.push(task.await.unwrap().unwrap().hash);
    }

    hashes.dedup();
    assert_eq!(hashes.len(), 1);
    assert_eq!(read_all(&store, &hashes[0]).await, data);
    let files = files_under(&dir.path().join("files"));
    assert_eq!(
        files,
        vec![store.object_path(&hashes[0])],
        "temp files were left behind"
    );
}
