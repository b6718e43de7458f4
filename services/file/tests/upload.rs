//! UploadFile, CheckFileExists, GetFileInfo, DownloadFile and DeleteFile over gRPC.

mod support;

use beehive_generated::pb::file::{
    CheckFileExistsRequest, DeleteFileRequest, DownloadFileRequest, GetFileInfoRequest,
    UploadFileRequest,
};
use support::{Harness, backends, sample_bytes, sha256_hex};
use tonic::Code;

const ALICE: i64 = 11;
const BOB: i64 = 12;
const CAROL: i64 = 13;

fn upload_request(user_id: i64, name: &str, data: &[u8]) -> UploadFileRequest {
    UploadFileRequest {
        user_id,
        file_name: name.to_owned(),
        file_size: data.len() as i64,
        file_type: "application/octet-stream".to_owned(),
        file_hash: sha256_hex(data),
        file_data: data.to_vec(),
    }
}

#[tokio::test]
async fn upload_then_read_back() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(300_000, 1);
        let hash = sha256_hex(&data);

        let uploaded = harness
            .client
            .upload_file(harness.as_user(ALICE, upload_request(ALICE, "report.pdf", &data)))
            .await
            .expect("upload");
        assert!(!uploaded.is_duplicate, "{backend:?}");
        assert_eq!(uploaded.file_hash, hash);
        assert_eq!(uploaded.file_url, format!("/files/{hash}"));

        let info = harness
            .client
            .get_file_info(harness.as_user(
                ALICE,
                GetFileInfoRequest {
                    file_id: uploaded.file_id,
                    ..Default::default()
                },
            ))
            .await
            .expect("info");
        assert_eq!(info.file_name, "report.pdf");
        assert_eq!(info.file_size, 300_000);
        assert_eq!(info.file_hash, hash);
        assert_eq!(info.file_url, uploaded.file_url);

        let exists = harness
            .client
            .check_file_exists(harness.as_user(
                BOB,
                CheckFileExistsRequest {
                    file_hash: hash.to_uppercase(),
                },
            ))
            .await
            .expect("check");
        assert!(exists.exists);
        assert_eq!(exists.file_id, uploaded.file_id);
        assert_eq!(exists.file_url, uploaded.file_url);

        let absent = harness
            .client
            .check_file_exists(harness.as_user(
                BOB,
                CheckFileExistsRequest {
                    file_hash: sha256_hex(b"other"),
                },
            ))
            .await
            .expect("check absent");
        assert!(!absent.exists);
        assert_eq!(absent.file_id, 0);

        let (bytes, sizes) = harness.download(ALICE, uploaded.file_id).await;
        assert_eq!(bytes, data);
        assert_eq!(sizes, vec![300_000]);

        let missing = harness
            .client
            .get_file_info(harness.as_user(
                BOB,
                GetFileInfoRequest {
                    file_id: uploaded.file_id + 100,
                    ..Default::default()
                },
            ))
            .await
            .expect_err("unknown id");
        assert_eq!(missing.code(), Code::NotFound);
        harness.stop().await;
    }
}

#[tokio::test]
async fn duplicate_upload_writes_nothing() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(200_000, 2);
        let first = harness
            .client
            .upload_file(harness.as_user(ALICE, upload_request(ALICE, "a.bin", &data)))
            .await
            .expect("first upload");
        let written = harness.store.bytes_written();
        let puts = harness.store.puts();
        assert_eq!(written, 200_000);

        let mut request = upload_request(BOB, "b.bin", &data);
        request.file_hash = request.file_hash.to_uppercase();
        let second = harness
            .client
            .upload_file(harness.as_user(BOB, request))
            .await
            .expect("second upload");

        assert!(second.is_duplicate, "{backend:?}");
        assert_eq!(second.file_id, first.file_id);
        assert_eq!(second.file_url, first.file_url);
        assert_eq!(second.file_hash, sha256_hex(&data));
        assert_eq!(
            harness.store.bytes_written(),
            written,
            "a duplicate moved bytes"
        );
        assert_eq!(harness.store.puts(), puts, "a duplicate called put");
        let rows = harness.file_rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].usage_count, 2);
        assert_eq!(rows[0].file_name, "a.bin");
        assert_eq!(harness.stored_objects().len(), 1);
        harness.stop().await;
    }
}

#[tokio::test]
async fn refused_uploads_leave_nothing() {
    for backend in backends() {
        let harness = Harness::start_with(backend, |config| {
            config.file.max_single_bytes = 64 * 1024;
        })
        .await;
        let data = sample_bytes(1000, 3);

        let mut wrong_hash = upload_request(ALICE, "a.bin", &data);
        wrong_hash.file_hash = sha256_hex(b"something else");
        let mut wrong_size = upload_request(ALICE, "a.bin", &data);
        wrong_size.file_size = 999;
        let too_big = upload_request(ALICE, "big.bin", &sample_bytes(64 * 1024 + 1, 4));
        let mut declared_too_big = upload_request(ALICE, "a.bin", &data);
        declared_too_big.file_size = 10 * 1024 * 1024;
        let cases = [
            ("file_hash", wrong_hash),
            ("file_size", wrong_size),
            ("file_data", too_big),
            ("file_size", declared_too_big),
            ("file_name", upload_request(ALICE, "", &data)),
            ("file_name", upload_request(ALICE, "a\0b", &data)),
            ("file_name", upload_request(ALICE, &"n".repeat(300), &data)),
        ];
        for (field, request) in cases {
            let status = harness
                .client
                .upload_file(harness.as_user(ALICE, request))
                .await
                .expect_err(field);
            assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
            assert!(
                status.to_string().contains(&format!("`{field}`")),
                "{field}: {status}"
            );
        }
        let too_big = harness
            .client
            .upload_file(harness.as_user(
                ALICE,
                upload_request(ALICE, "big.bin", &sample_bytes(64 * 1024 + 1, 4)),
            ))
            .await
            .expect_err("too big");
        assert!(too_big.to_string().contains("multipart"), "{too_big}");
        let mut declared_too_big = upload_request(ALICE, "a.bin", &data);
        declared_too_big.file_size = 64 * 1024 + 1;
        let declared_too_big = harness
            .client
            .upload_file(harness.as_user(ALICE, declared_too_big))
            .await
            .expect_err("declared too big");
        assert!(
            declared_too_big.to_string().contains("multipart"),
            "{declared_too_big}"
        );

        let foreign = harness
            .client
            .upload_file(harness.as_user(BOB, upload_request(ALICE, "a.bin", &data)))
            .await
            .expect_err("acting for another user");
        assert_eq!(foreign.code(), Code::PermissionDenied);
        let anonymous = harness
            .client
            .upload_file(tonic::Request::new(upload_request(ALICE, "a.bin", &data)))
            .await
            .expect_err("no token");
        assert_eq!(anonymous.code(), Code::Unauthenticated);

        assert!(harness.file_rows().await.is_empty(), "{backend:?}");
        assert!(harness.ref_rows().await.is_empty());
        assert!(
            harness.stored_objects().is_empty(),
            "{:?}",
            harness.stored_objects()
        );
        assert_eq!(harness.store.bytes_written(), 0);
        harness.stop().await;
    }
}

#[tokio::test]
async fn hostile_names_stay_metadata() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let names = [
            "../../etc/passwd",
            "/etc/passwd",
            "..",
            "a/../../b",
            "C:\\Windows\\x",
        ];
        for (index, name) in names.iter().enumerate() {
            let data = sample_bytes(100, 10 + index as u64);
            let hash = sha256_hex(&data);
            let uploaded = harness
                .client
                .upload_file(harness.as_user(ALICE, upload_request(ALICE, name, &data)))
                .await
                .expect("upload");
            assert_eq!(uploaded.file_url, format!("/files/{hash}"), "{name}");
            let info = harness
                .client
                .get_file_info(harness.as_user(
                    ALICE,
                    GetFileInfoRequest {
                        file_id: uploaded.file_id,
                        ..Default::default()
                    },
                ))
                .await
                .expect("info");
            assert_eq!(info.file_name, *name);
        }

        let stored = harness.stored_objects();
        assert_eq!(stored.len(), names.len());
        for path in &stored {
            assert!(
                path.starts_with(harness.data_dir.path().join("files")),
                "{path:?}"
            );
            let file_name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default();
            assert_eq!(file_name.len(), 64, "{path:?}");
            assert!(file_name.bytes().all(|b| b.is_ascii_hexdigit()), "{path:?}");
        }
        for row in harness.file_rows().await {
            assert!(!row.url.contains(".."), "{}", row.url);
            assert!(!row.storage_path.contains(".."), "{}", row.storage_path);
        }
        assert!(!std::path::Path::new("/etc/passwd.beehive").exists());
        harness.stop().await;
    }
}

#[tokio::test]
async fn concurrent_uploads_make_one_row() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(500_000, 5);
        let uploads = (0..8).map(|index| {
            let user = 100 + index;
            let request = harness.as_user(user, upload_request(user, "same.bin", &data));
            let client = harness.client.clone();
            async move { client.upload_file(request).await }
        });
        let results = futures::future::join_all(uploads).await;

        let responses: Vec<_> = results
            .into_iter()
            .map(|result| result.expect("upload"))
            .collect();
        let originals = responses.iter().filter(|r| !r.is_duplicate).count();
        assert_eq!(originals, 1, "{backend:?}: {responses:?}");
        assert!(responses.iter().all(|r| r.file_id == responses[0].file_id));
        let rows = harness.file_rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].usage_count, 8);
        assert_eq!(harness.ref_rows().await.len(), 8);
        assert_eq!(harness.stored_objects().len(), 1);
        harness.stop().await;
    }
}

#[tokio::test]
async fn delete_counts_down_then_removes_bytes() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(4096, 6);
        let first = harness
            .client
            .upload_file(harness.as_user(ALICE, upload_request(ALICE, "a.bin", &data)))
            .await
            .expect("alice uploads");
        harness
            .client
            .upload_file(harness.as_user(BOB, upload_request(BOB, "b.bin", &data)))
            .await
            .expect("bob uploads");
        let delete = |user| {
            harness.as_user(
                user,
                DeleteFileRequest {
                    file_id: first.file_id,
                },
            )
        };

        let stranger = harness
            .client
            .delete_file(delete(CAROL))
            .await
            .expect_err("carol holds no reference");
        assert_eq!(stranger.code(), Code::PermissionDenied, "{backend:?}");
        assert_eq!(harness.file_rows().await[0].usage_count, 2);

        harness
            .client
            .delete_file(delete(ALICE))
            .await
            .expect("alice deletes");
        assert_eq!(harness.file_rows().await[0].usage_count, 1);
        assert_eq!(harness.stored_objects().len(), 1);
        let again = harness
            .client
            .delete_file(delete(ALICE))
            .await
            .expect_err("alice has no reference left");
        assert_eq!(again.code(), Code::PermissionDenied);

        harness
            .client
            .delete_file(delete(BOB))
            .await
            .expect("bob deletes");
        assert!(harness.file_rows().await.is_empty());
        assert!(harness.ref_rows().await.is_empty());
        assert!(harness.stored_objects().is_empty());
        let gone = harness
            .client
            .delete_file(delete(BOB))
            .await
            .expect_err("file is gone");
        assert_eq!(gone.code(), Code::NotFound);

        let reuploaded = harness
            .client
            .upload_file(harness.as_user(CAROL, upload_request(CAROL, "c.bin", &data)))
            .await
            .expect("upload after delete");
        assert!(!reuploaded.is_duplicate);
        let (bytes, _) = harness.download(CAROL, reuploaded.file_id).await;
        assert_eq!(bytes, data);
        harness.stop().await;
    }
}

#[tokio::test]
async fn reads_need_an_upload_or_the_hash() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(5000, 7);
        let hash = sha256_hex(&data);
        let first = harness
            .client
            .upload_file(harness.as_user(ALICE, upload_request(ALICE, "alice.pdf", &data)))
            .await
            .expect("alice uploads");
        let second = harness
            .client
            .upload_file(harness.as_user(BOB, upload_request(BOB, "bob.pdf", &data)))
            .await
            .expect("bob uploads");
        assert!(second.is_duplicate);
        let info = |user: i64, file_hash: &str| {
            harness.as_user(
                user,
                GetFileInfoRequest {
                    file_id: first.file_id,
                    file_hash: file_hash.to_owned(),
                },
            )
        };
        let download = |user: i64, file_hash: &str| {
            harness.as_user(
                user,
                DownloadFileRequest {
                    file_id: first.file_id,
                    file_hash: file_hash.to_owned(),
                },
            )
        };

        // A stranger guessing the id, with no hash or a wrong one, is denied.
        let other_hash = sha256_hex(b"other content");
        for file_hash in ["", other_hash.as_str()] {
            let denied = harness
                .client
                .get_file_info(info(CAROL, file_hash))
                .await
                .expect_err("stranger reads info");
            assert_eq!(denied.code(), Code::PermissionDenied, "{backend:?}");
            let denied = harness
                .client
                .download_file(download(CAROL, file_hash))
                .await
                .expect_err("stranger downloads");
            assert_eq!(denied.code(), Code::PermissionDenied, "{backend:?}");
        }
        let denied = harness
            .client
            .delete_file(harness.as_user(
                CAROL,
                DeleteFileRequest {
                    file_id: first.file_id,
                },
            ))
            .await
            .expect_err("stranger deletes");
        assert_eq!(denied.code(), Code::PermissionDenied);

        // The denied calls changed nothing.
        let rows = harness.file_rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].usage_count, 2);
        assert_eq!(harness.ref_rows().await.len(), 2);
        let mut names: Vec<(i64, String)> = harness
            .name_rows()
            .await
            .into_iter()
            .map(|row| (row.user_id, row.file_name))
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![(ALICE, "alice.pdf".to_owned()), (BOB, "bob.pdf".to_owned())]
        );
        assert_eq!(harness.stored_objects().len(), 1);

        // Each uploader sees their own name.
        let alice = harness
            .client
            .get_file_info(info(ALICE, ""))
            .await
            .expect("alice reads");
        assert_eq!(alice.file_name, "alice.pdf");
        let bob = harness
            .client
            .get_file_info(info(BOB, ""))
            .await
            .expect("bob reads");
        assert_eq!(bob.file_name, "bob.pdf");
        assert_eq!(bob.file_hash, hash);
        let (bytes, _) = harness.download(BOB, first.file_id).await;
        assert_eq!(bytes, data);

        // A recipient of the URL reads with its hash and sees no uploader's name.
        let shared = harness
            .client
            .get_file_info(info(CAROL, &hash.to_uppercase()))
            .await
            .expect("recipient reads");
        assert_eq!(shared.file_name, "");
        assert_eq!(shared.file_size, 5000);
        let mut stream = harness
            .client
            .download_file(download(CAROL, &hash))
            .await
            .expect("recipient downloads");
        let mut received = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            received.extend_from_slice(&chunk.expect("chunk").data);
        }
        assert_eq!(received, data);

        // Services read every file under the first uploader's name.
        let service = harness
            .client
            .get_file_info(harness.as_service(GetFileInfoRequest {
                file_id: first.file_id,
                ..Default::default()
            }))
            .await
            .expect("service reads");
        assert_eq!(service.file_name, "alice.pdf");

        // Deleting her only upload ends Alice's access by id.
        harness
            .client
            .delete_file(harness.as_user(
                ALICE,
                DeleteFileRequest {
                    file_id: first.file_id,
                },
            ))
            .await
            .expect("alice deletes");
        let denied = harness
            .client
            .get_file_info(info(ALICE, ""))
            .await
            .expect_err("alice after delete");
        assert_eq!(denied.code(), Code::PermissionDenied);
        let names: Vec<i64> = harness
            .name_rows()
            .await
            .iter()
            .map(|row| row.user_id)
            .collect();
        assert_eq!(names, vec![BOB]);
        harness.stop().await;
    }
}
