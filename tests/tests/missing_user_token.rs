//! A correctly signed token whose user does not exist, against `beehive up` in this process.

use beehive::clients::{Clients, with_token};
use beehive_generated::pb::chat::{CreateConversationRequest, GetConversationsRequest};
use beehive_generated::pb::file::DownloadFileRequest;
use beehive_generated::pb::friend::GetFriendsRequest;
use beehive_generated::pb::message::SendMessageRequest;
use beehive_generated::pb::user::GetUserInfoRequest;
use beehive_tests::deploy::Deployment;
use tonic::Code;

const GHOST: i64 = 999_999;

fn assert_missing_user<T: std::fmt::Debug>(result: Result<T, tonic::Status>, rpc: &str) {
    let status = match result {
        Ok(value) => panic!("{rpc} accepted the token of a missing user: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
    assert_eq!(
        status.message(),
        format!("unauthenticated: the token's user {GHOST} does not exist; log in again"),
        "{rpc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_user_token_rejected_everywhere() {
    let deployment = Deployment::embedded().await.unwrap();
    let clients = Clients::connect(&deployment.endpoints, 1).await.unwrap();
    let ghost = deployment
        .stack
        .authenticator()
        .issue_user_token(GHOST)
        .unwrap();
    let service = deployment
        .stack
        .authenticator()
        .issue_service_token()
        .unwrap();

    let info = clients
        .user(0)
        .get_user_info(with_token(GetUserInfoRequest { user_id: GHOST }, &ghost))
        .await;
    assert_missing_user(info, "GetUserInfo");
    let friends = clients
        .friend(0)
        .get_friends(with_token(GetFriendsRequest { user_id: GHOST }, &ghost))
        .await;
    assert_missing_user(friends, "GetFriends");
    let listed = clients
        .chat(0)
        .get_conversations(with_token(
            GetConversationsRequest { user_id: GHOST },
            &ghost,
        ))
        .await;
    assert_missing_user(listed, "GetConversations");
    let created = clients
        .chat(0)
        .create_conversation(with_token(
            CreateConversationRequest {
                r#type: 2,
                name: "ghosts".to_owned(),
                owner_id: GHOST,
                member_ids: vec![GHOST + 1],
            },
            &ghost,
        ))
        .await;
    assert_missing_user(created, "CreateConversation");
    let sent = clients
        .message(0)
        .send_message(with_token(
            SendMessageRequest {
                conversation_id: 1,
                sender_id: GHOST,
                content_type: 1,
                content: "boo".to_owned(),
                ..SendMessageRequest::default()
            },
            &ghost,
        ))
        .await;
    assert_missing_user(sent, "SendMessage");
    // A server-streaming RPC runs the same check.
    let download = clients
        .file(0)
        .download_file(with_token(
            DownloadFileRequest {
                file_id: 1,
                ..DownloadFileRequest::default()
            },
            &ghost,
        ))
        .await;
    assert_missing_user(download, "DownloadFile");

    // The rejected CreateConversation wrote nothing.
    let ghost_conversations = clients
        .chat(0)
        .get_conversations(with_token(
            GetConversationsRequest { user_id: GHOST },
            &service,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ghost_conversations.conversations.len(), 0);

    deployment.stop().await;
}
