//! Multipart uploads over gRPC: resume, replacement, completion checks and expiry.

mod support;

use std::time::Duration;

use beehive_generated::pb::file::{
    CompleteMultipartUploadRequest, GetFileInfoRequest, GetUploadStatusRequest,
    InitMultipartUploadRequest, PartInfo, UploadPartRequest,
};
use support::{Harness, backends, sample_bytes, sha256_hex};
use tonic::Code;

const ALICE: i64 = 21;
const BOB: i64 = 22;
const PART_BYTES: usize = 5 * 1024 * 1024;

fn init_request(user_id: i64, data: &[u8], total_parts: i32) -> InitMultipartUploadRequest {
    InitMultipartUploadRequest {
        user_id,
        file_name: "video.mp4".to_owned(),
        file_size: data.len() as i64,
        file_type: "video/mp4".to_owned(),
        file_hash: sha256_hex(data),
        total_parts,
    }
}

fn part(data: &[u8], number: usize) -> Vec<u8> {
    let start = (number - 1) * PART_BYTES;
    data[start..(start + PART_BYTES).min(data.len())].to_vec()
}

impl Harness {
    async fn init(&self, user_id: i64, data: &[u8], total_parts: i32) -> String {
        self.client
            .init_multipart_upload(self.as_user(user_id, init_request(user_id, data, total_parts)))
            .await
            .expect("init")
            .upload_id
    }

    async fn send_part(
        &self,
        user_id: i64,
        upload_id: &str,
        number: usize,
        bytes: Vec<u8>,
    ) -> String {
        let request = UploadPartRequest {
            upload_id: upload_id.to_owned(),
            part_number: number as i32,
            part_data: bytes,
        };
        let response = self
            .client
            .upload_part(self.as_user(user_id, request))
            .await
            .expect("upload part");
        assert!(response.success);
        response.etag
    }

    fn complete_request(
        &self,
        upload_id: &str,
        etags: &[(i32, String)],
    ) -> CompleteMultipartUploadRequest {
        CompleteMultipartUploadRequest {
            upload_id: upload_id.to_owned(),
            parts: etags
                .iter()
                .map(|(part_number, etag)| PartInfo {
                    part_number: *part_number,
                    etag: etag.clone(),
                })
                .collect(),
        }
    }
}

#[tokio::test]
async fn large_file_out_of_order_with_resend() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(64 * 1024 * 1024, 7);
        let total = data.len().div_ceil(PART_BYTES);
        assert_eq!(total, 13);
        let upload_id = harness.init(ALICE, &data, total as i32).await;

        // Part 3 first carries the wrong bytes; sending it again replaces them.
        let wrong = sample_bytes(PART_BYTES, 99);
        let wrong_etag = harness.send_part(ALICE, &upload_id, 3, wrong.clone()).await;
        assert_eq!(wrong_etag, sha256_hex(&wrong));
        let order = [13, 1, 7, 2, 12, 5, 4, 11, 6, 3, 10, 9, 8];
        let mut etags = Vec::new();
        for number in order {
            let bytes = part(&data, number);
            let expected = sha256_hex(&bytes);
            let etag = harness.send_part(ALICE, &upload_id, number, bytes).await;
            assert_eq!(etag, expected, "part {number}");
            etags.push((number as i32, etag));
        }

        let status = harness
            .client
            .get_upload_status(harness.as_user(
                ALICE,
                GetUploadStatusRequest {
                    upload_id: upload_id.clone(),
                },
            ))
            .await
            .expect("status");
        assert_eq!(status.total_parts, 13);
        assert_eq!(status.file_size, data.len() as i64);
        let listed: Vec<i32> = status.parts.iter().map(|part| part.part_number).collect();
        assert_eq!(listed, (1..=13).collect::<Vec<_>>());
        assert_eq!(status.parts[2].etag, sha256_hex(&part(&data, 3)));

        let written_before = harness.store.bytes_written();
        let completed = harness
            .client
            .complete_multipart_upload(
                harness.as_user(ALICE, harness.complete_request(&upload_id, &etags)),
            )
            .await
            .expect("complete");
        let hash = sha256_hex(&data);
        assert_eq!(completed.file_hash, hash, "{backend:?}");
        assert!(!completed.is_duplicate);
        assert_eq!(completed.file_url, format!("/files/{hash}"));
        assert_eq!(
            harness.store.bytes_written() - written_before,
            data.len() as u64
        );

        let rows = harness.file_rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].file_size, data.len() as i64);
        assert_eq!(rows[0].usage_count, 1);
        assert_eq!(harness.upload_rows().await, 0);
        assert_eq!(harness.part_rows().await, 0);
        assert_eq!(harness.staged_uploads(), 0);

        let names = harness.name_rows().await;
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].user_id, ALICE);
        assert_eq!(names[0].file_name, rows[0].file_name);

        // Completing the upload gives Alice read access.
        let (bytes, sizes) = harness.download(ALICE, completed.file_id).await;
        assert_eq!(bytes.len(), data.len());
        assert!(bytes == data, "downloaded bytes differ");
        assert_eq!(sizes.len(), 64);
        assert!(sizes.iter().all(|size| *size == 1024 * 1024));

        let again = harness
            .client
            .complete_multipart_upload(
                harness.as_user(ALICE, harness.complete_request(&upload_id, &etags)),
            )
            .await
            .expect_err("completed twice");
        assert_eq!(again.code(), Code::NotFound);
        harness.stop().await;
    }
}

#[tokio::test]
async fn completion_names_missing_and_mismatched_parts() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(3 * PART_BYTES + 10, 8);
        let upload_id = harness.init(ALICE, &data, 4).await;
        let etag1 = harness
            .send_part(ALICE, &upload_id, 1, part(&data, 1))
            .await;
        let etag2 = harness
            .send_part(ALICE, &upload_id, 2, part(&data, 2))
            .await;
        let etag4 = harness
            .send_part(ALICE, &upload_id, 4, part(&data, 4))
            .await;
        assert_eq!(part(&data, 4).len(), 10);

        let request = harness.complete_request(
            &upload_id,
            &[
                (1, etag1.clone()),
                (2, sha256_hex(b"not part 2")),
                (4, etag4.clone()),
            ],
        );
        let status = harness
            .client
            .complete_multipart_upload(harness.as_user(ALICE, request))
            .await
            .expect_err("part 3 missing");
        assert_eq!(status.code(), Code::FailedPrecondition, "{backend:?}");
        let message = status.to_string();
        assert!(message.contains("parts not uploaded: 3"), "{message}");
        assert!(message.contains("parts whose etag differs: 2"), "{message}");

        let etag3 = harness
            .send_part(ALICE, &upload_id, 3, part(&data, 3))
            .await;
        let unlisted = harness
            .client
            .complete_multipart_upload(harness.as_user(
                ALICE,
                harness.complete_request(&upload_id, &[(1, etag1.clone())]),
            ))
            .await
            .expect_err("parts not listed");
        assert_eq!(unlisted.code(), Code::FailedPrecondition);
        assert!(
            unlisted
                .to_string()
                .contains("not listed in the request: 2, 3, 4"),
            "{unlisted}"
        );
        assert!(harness.file_rows().await.is_empty());
        assert!(harness.stored_objects().is_empty());

        let etags = [
            (1, etag1),
            (2, etag2.to_uppercase()),
            (3, etag3),
            (4, etag4),
        ];
        let completed = harness
            .client
            .complete_multipart_upload(
                harness.as_user(ALICE, harness.complete_request(&upload_id, &etags)),
            )
            .await
            .expect("complete");
        assert_eq!(completed.file_hash, sha256_hex(&data));
        let (bytes, _) = harness.download(ALICE, completed.file_id).await;
        assert!(bytes == data);
        harness.stop().await;
    }
}

#[tokio::test]
async fn wrong_declared_hash_is_data_loss() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(PART_BYTES + 100, 9);
        let mut request = init_request(ALICE, &data, 2);
        request.file_hash = sha256_hex(b"a different file");
        let upload_id = harness
            .client
            .init_multipart_upload(harness.as_user(ALICE, request))
            .await
            .expect("init")
            .upload_id;
        let etag1 = harness
            .send_part(ALICE, &upload_id, 1, part(&data, 1))
            .await;
        let etag2 = harness
            .send_part(ALICE, &upload_id, 2, part(&data, 2))
            .await;

        let status = harness
            .client
            .complete_multipart_upload(harness.as_user(
                ALICE,
                harness.complete_request(&upload_id, &[(1, etag1), (2, etag2)]),
            ))
            .await
            .expect_err("hash differs");
        assert_eq!(status.code(), Code::DataLoss, "{backend:?}: {status}");
        assert!(harness.file_rows().await.is_empty());
        assert!(
            harness.stored_objects().is_empty(),
            "{:?}",
            harness.stored_objects()
        );
        assert_eq!(
            harness.upload_rows().await,
            1,
            "the upload stays for a retry"
        );
        harness.stop().await;
    }
}

#[tokio::test]
async fn duplicate_content_completes_as_duplicate() {
    for backend in backends() {
        let harness = Harness::start(backend).await;
        let data = sample_bytes(PART_BYTES + 1, 10);
        let mut ids = Vec::new();
        for user in [ALICE, BOB] {
            let upload_id = harness.init(user, &data, 2).await;
            let etag1 = harness.send_part(user, &upload_id, 1, part(&data, 1)).await;
            let etag2 = harness.send_part(user, &upload_id, 2, part(&data, 2)).await;
            let completed = harness
                .client
                .complete_multipart_upload(harness.as_user(
                    user,
                    harness.complete_request(&upload_id, &[(1, etag1), (2, etag2)]),
                ))
                .await
                .expect("complete");
            assert_eq!(completed.is_duplicate, user == BOB, "{backend:?}");
            ids.push(completed.file_id);
        }
        assert_eq!(ids[0], ids[1]);
        let rows = harness.file_rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].usage_count, 2);
        assert_eq!(harness.staged_uploads(), 0);
        harness.stop().await;
    }
}

#[tokio::test]
async fn invalid_multipart_calls_are_refused() {
    for backend in backends() {
        let harness = Harness::start_with(backend, |config| {
            config.file.max_upload_bytes = 20 * 1024 * 1024;
        })
        .await;
        let data = sample_bytes(2 * PART_BYTES + 5, 11);

        let wrong_parts = harness
            .client
            .init_multipart_upload(harness.as_user(ALICE, init_request(ALICE, &data, 2)))
            .await
            .expect_err("3 parts needed");
        assert_eq!(wrong_parts.code(), Code::InvalidArgument, "{backend:?}");
        assert!(
            wrong_parts.to_string().contains("total_parts"),
            "{wrong_parts}"
        );
        let mut too_big = init_request(ALICE, &data, 5);
        too_big.file_size = 20 * 1024 * 1024 + 1;
        let too_big = harness
            .client
            .init_multipart_upload(harness.as_user(ALICE, too_big))
            .await
            .expect_err("over the maximum");
        assert_eq!(too_big.code(), Code::InvalidArgument);
        assert!(too_big.to_string().contains("file_size"), "{too_big}");
        let foreign = harness
            .client
            .init_multipart_upload(harness.as_user(BOB, init_request(ALICE, &data, 3)))
            .await
            .expect_err("acting for another user");
        assert_eq!(foreign.code(), Code::PermissionDenied);
        assert_eq!(harness.upload_rows().await, 0);

        let upload_id = harness.init(ALICE, &data, 3).await;
        let short_middle = UploadPartRequest {
            upload_id: upload_id.clone(),
            part_number: 2,
            part_data: vec![0; 100],
        };
        let wrong_last = UploadPartRequest {
            upload_id: upload_id.clone(),
            part_number: 3,
            part_data: vec![0; 6],
        };
        let beyond = UploadPartRequest {
            upload_id: upload_id.clone(),
            part_number: 4,
            part_data: vec![0; 5],
        };
        let unknown = UploadPartRequest {
            upload_id: uuid::Uuid::new_v4().to_string(),
            part_number: 1,
            part_data: vec![0; 5],
        };
        let traversal = UploadPartRequest {
            upload_id: "../../etc".to_owned(),
            part_number: 1,
            part_data: vec![0; 5],
        };
        let cases = [
            (short_middle, Code::InvalidArgument, "part_data"),
            (wrong_last, Code::InvalidArgument, "part_data"),
            (beyond, Code::InvalidArgument, "part_number"),
            (unknown, Code::NotFound, "upload"),
            (traversal, Code::InvalidArgument, "upload_id"),
        ];
        for (request, code, field) in cases {
            let status = harness
                .client
                .upload_part(harness.as_user(ALICE, request))
                .await
                .expect_err(field);
            assert_eq!(status.code(), code, "{field}: {status}");
            assert!(status.to_string().contains(field), "{status}");
        }
        let bob = harness
            .client
            .upload_part(harness.as_user(
                BOB,
                UploadPartRequest {
                    upload_id: upload_id.clone(),
                    part_number: 3,
                    part_data: vec![0; 5],
                },
            ))
            .await
            .expect_err("another user's upload");
        assert_eq!(bob.code(), Code::PermissionDenied);
        let bob_status = harness
            .client
            .get_upload_status(harness.as_user(
                BOB,
                GetUploadStatusRequest {
                    upload_id: upload_id.clone(),
                },
            ))
            .await
            .expect_err("another user's status");
        assert_eq!(bob_status.code(), Code::PermissionDenied);

        assert_eq!(harness.part_rows().await, 0);
        assert_eq!(harness.store.bytes_written(), 0);
        harness.stop().await;
    }
}

#[tokio::test]
async fn idle_uploads_expire() {
    for backend in backends() {
        let harness = Harness::start_with(backend, |config| {
            config.file.upload_expiry_secs = 1;
        })
        .await;
        let data = sample_bytes(PART_BYTES + 3, 12);
        let idle = harness.init(ALICE, &data, 2).await;
        harness.send_part(ALICE, &idle, 1, part(&data, 1)).await;
        assert_eq!(harness.staged_uploads(), 1);

        tokio::time::sleep(Duration::from_millis(1100)).await;
        let fresh = harness.init(ALICE, &data, 2).await;
        let removed = harness
            .service
            .sweep_expired_uploads()
            .await
            .expect("sweep");

        assert_eq!(removed, 1, "{backend:?}");
        assert_eq!(harness.upload_rows().await, 1);
        assert_eq!(harness.part_rows().await, 0);
        assert_eq!(harness.staged_uploads(), 0);
        let status = harness
            .client
            .get_upload_status(harness.as_user(ALICE, GetUploadStatusRequest { upload_id: idle }))
            .await
            .expect_err("expired");
        assert_eq!(status.code(), Code::NotFound);
        let fresh_status = harness
            .client
            .get_upload_status(harness.as_user(
                ALICE,
                GetUploadStatusRequest {
                    upload_id: fresh.clone(),
                },
            ))
            .await
            .expect("fresh upload");
        assert!(fresh_status.parts.is_empty());
        let info = harness
            .client
            .get_file_info(harness.as_user(
                ALICE,
                GetFileInfoRequest {
                    file_id: 1,
                    ..Default::default()
                },
            ))
            .await
            .expect_err("nothing completed");
        assert_eq!(info.code(), Code::NotFound);
        harness.stop().await;
    }
}
