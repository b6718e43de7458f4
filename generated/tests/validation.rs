//! The `Validate` impls generated from the six protos' `(beehive.rules)`: each rule rejects with
//! INVALID_ARGUMENT naming the field path, and valid requests pass.

use beehive_generated::pb::{chat, file, message, search, user};
use beehive_runtime::rpc::Validate;

/// One change to a valid request that should break the rule of the named field.
type Mutation<T> = Box<dyn Fn(&mut T)>;

/// The field path of the violation, failing the test when the request passed.
fn violated_field(request: &impl Validate) -> String {
    match request.validate() {
        Ok(()) => panic!("the request passed validation"),
        Err(err) => {
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
            err.field().expect("a violation names its field").to_owned()
        }
    }
}

fn register() -> user::RegisterRequest {
    user::RegisterRequest {
        username: "alice_01".to_owned(),
        email: "alice@example.com".to_owned(),
        password: "correct horse".to_owned(),
        code: "123456".to_owned(),
    }
}

#[test]
fn valid_register_passes() {
    assert!(register().validate().is_ok());
}

#[test]
fn register_rules_name_each_field() {
    let cases: Vec<(&str, Mutation<user::RegisterRequest>)> = vec![
        ("username", Box::new(|r| r.username.clear())),
        ("username", Box::new(|r| r.username = "a".repeat(51))),
        ("username", Box::new(|r| r.username = "bad name".to_owned())),
        ("email", Box::new(|r| r.email = "not-an-email".to_owned())),
        ("email", Box::new(|r| r.email.clear())),
        (
            "email",
            Box::new(|r| r.email = format!("{}@example.com", "a".repeat(90))),
        ),
        ("password", Box::new(|r| r.password = "short".to_owned())),
        ("password", Box::new(|r| r.password = "p".repeat(73))),
        ("code", Box::new(|r| r.code = "12345".to_owned())),
        ("code", Box::new(|r| r.code = "12345a".to_owned())),
    ];
    for (field, mutate) in cases {
        let mut request = register();
        mutate(&mut request);
        assert_eq!(violated_field(&request), field, "{request:?}");
    }
}

#[test]
fn username_counts_characters_and_password_counts_bytes() {
    let mut request = register();
    request.username = "蜂".repeat(50);
    // 50 characters pass the length rule, then the pattern (ASCII only) rejects them.
    let err = request
        .validate()
        .expect_err("non-ASCII usernames are rejected");
    assert!(err.to_string().contains("must match"), "{err}");

    let mut request = register();
    request.password = "密".repeat(24); // 72 bytes.
    assert!(request.validate().is_ok());
    request.password.push('a'); // 73 bytes.
    assert_eq!(violated_field(&request), "password");
}

#[test]
fn rules_are_checked_in_field_order() {
    let request = user::RegisterRequest {
        username: String::new(),
        email: "bad".to_owned(),
        password: String::new(),
        code: String::new(),
    };
    assert_eq!(violated_field(&request), "username");
}

#[test]
fn code_purpose_must_be_listed() {
    let mut request = user::SendCodeRequest {
        email: "a@example.com".to_owned(),
        purpose: "reset_password".to_owned(),
    };
    assert!(request.validate().is_ok());
    request.purpose = "other".to_owned();
    assert_eq!(violated_field(&request), "purpose");
}

#[test]
fn empty_profile_fields_mean_unchanged() {
    let mut request = user::UpdateUserInfoRequest {
        user_id: 7,
        nickname: String::new(),
        avatar_url: String::new(),
    };
    assert!(request.validate().is_ok());
    request.avatar_url = "ftp://example.com/a.png".to_owned();
    assert_eq!(violated_field(&request), "avatar_url");
    request.avatar_url = "https://example.com/a.png".to_owned();
    request.nickname = "n".repeat(51);
    assert_eq!(violated_field(&request), "nickname");
    request.user_id = 0;
    assert_eq!(violated_field(&request), "user_id");
}

#[test]
fn batch_ids_are_bounded_and_named_by_index() {
    let mut request = user::GetUsersByIdsRequest {
        user_ids: (1..=100).collect(),
    };
    assert!(request.validate().is_ok());
    request.user_ids.push(101);
    assert_eq!(violated_field(&request), "user_ids");
    request.user_ids = vec![1, 2, 3, 0];
    assert_eq!(violated_field(&request), "user_ids[3]");
}

#[test]
fn nested_parts_are_named_by_path() {
    let part = |number: i32, etag: &str| file::PartInfo {
        part_number: number,
        etag: etag.to_owned(),
    };
    let mut request = file::CompleteMultipartUploadRequest {
        upload_id: "u1".to_owned(),
        parts: vec![part(1, "a"), part(2, "b"), part(3, "c")],
    };
    assert!(request.validate().is_ok());
    request.parts[2].part_number = 0;
    assert_eq!(violated_field(&request), "parts[2].part_number");
    request.parts[2].part_number = 3;
    request.parts[1].etag = "e".repeat(129);
    assert_eq!(violated_field(&request), "parts[1].etag");
}

#[test]
fn file_names_and_hashes_are_checked() {
    let upload = || file::UploadFileRequest {
        user_id: 1,
        file_name: "report.pdf".to_owned(),
        file_size: 3,
        file_type: "application/pdf".to_owned(),
        file_hash: "AB".repeat(32),
        file_data: b"abc".to_vec(),
    };
    assert!(upload().validate().is_ok());

    let cases: Vec<(&str, Mutation<file::UploadFileRequest>)> = vec![
        ("file_name", Box::new(|r| r.file_name.clear())),
        ("file_name", Box::new(|r| r.file_name = "a\0b".to_owned())),
        ("file_name", Box::new(|r| r.file_name = "a\nb".to_owned())),
        ("file_name", Box::new(|r| r.file_name = "名".repeat(86))), // 258 bytes.
        ("file_size", Box::new(|r| r.file_size = -1)),
        ("file_type", Box::new(|r| r.file_type = "t".repeat(101))),
        ("file_hash", Box::new(|r| r.file_hash = "ab".repeat(31))),
        ("file_hash", Box::new(|r| r.file_hash = "zz".repeat(32))),
        ("user_id", Box::new(|r| r.user_id = 0)),
    ];
    for (field, mutate) in cases {
        let mut request = upload();
        mutate(&mut request);
        assert_eq!(violated_field(&request), field, "{:?}", request.file_name);
    }

    let mut init = file::InitMultipartUploadRequest {
        user_id: 1,
        file_name: "a.bin".to_owned(),
        file_size: 10,
        file_type: String::new(),
        file_hash: "0".repeat(64),
        total_parts: 1,
    };
    assert!(init.validate().is_ok());
    init.total_parts = 0;
    assert_eq!(violated_field(&init), "total_parts");
}

#[test]
fn message_rules_follow_the_contract() {
    let send = || message::SendMessageRequest {
        conversation_id: 1,
        sender_id: 2,
        content_type: 1,
        content: "hi".to_owned(),
        extra_data: String::new(),
        client_msg_id: String::new(),
    };
    assert!(send().validate().is_ok());
    let mut request = send();
    request.extra_data = "[1,2]".to_owned();
    assert!(request.validate().is_ok());

    let cases: Vec<(&str, Mutation<message::SendMessageRequest>)> = vec![
        ("content_type", Box::new(|r| r.content_type = 0)),
        ("content_type", Box::new(|r| r.content_type = 5)),
        ("content", Box::new(|r| r.content.clear())),
        ("content", Box::new(|r| r.content = "x".repeat(10_001))),
        (
            "extra_data",
            Box::new(|r| r.extra_data = "\"text\"".to_owned()),
        ),
        ("extra_data", Box::new(|r| r.extra_data = "{".to_owned())),
        (
            "client_msg_id",
            Box::new(|r| r.client_msg_id = "c".repeat(65)),
        ),
        ("sender_id", Box::new(|r| r.sender_id = 0)),
    ];
    for (field, mutate) in cases {
        let mut request = send();
        mutate(&mut request);
        assert_eq!(violated_field(&request), field);
    }

    let mut history = message::GetMessagesRequest {
        conversation_id: 1,
        before_id: 0,
        limit: 0,
    };
    assert!(history.validate().is_ok());
    history.limit = -1;
    assert_eq!(violated_field(&history), "limit");

    let mut status = message::UpdateMessageStatusRequest {
        message_id: 1,
        status: 2,
    };
    assert!(status.validate().is_ok());
    status.status = 3;
    assert_eq!(violated_field(&status), "status");
}

#[test]
fn chat_and_search_rules_follow_the_contract() {
    let mut create = chat::CreateConversationRequest {
        r#type: 2,
        name: "team".to_owned(),
        owner_id: 1,
        member_ids: vec![2, 3],
    };
    assert!(create.validate().is_ok());
    create.r#type = 3;
    assert_eq!(violated_field(&create), "type");
    create.r#type = 1;
    create.name = "n".repeat(101);
    assert_eq!(violated_field(&create), "name");

    let mut search = search::SearchMessagesRequest {
        keyword: "hello".to_owned(),
        user_id: 1,
        conversation_id: 0,
        page: 0,
        page_size: 0,
    };
    assert!(search.validate().is_ok());
    search.keyword = "k".repeat(201);
    assert_eq!(violated_field(&search), "keyword");
    search.keyword = "k".to_owned();
    search.page_size = -1;
    assert_eq!(violated_field(&search), "page_size");
}

#[test]
fn requests_without_rules_always_pass() {
    let request = chat::UpdateUnreadCountRequest {
        conversation_id: 1,
        user_id: 1,
        increment: -5,
    };
    assert!(request.validate().is_ok());
}
