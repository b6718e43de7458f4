//! The in-process deployment (`beehive up`, `beehive bench` without `--target`): calls that
//! cross services work from the moment `Stack::start` returns.

use beehive::clients::{Clients, Endpoints, with_token};
use beehive::replay::start_in_process;
use beehive_generated::pb::chat::{CreateConversationRequest, GetConversationsRequest};
use beehive_runtime::config::Config;

/// Stacks started one after the other; each starts with empty discovery.
const ROUNDS: usize = 10;
/// Calls sent at once right after a stack started.
const CALLS: usize = 32;
/// `CreateConversationRequest.type` of a group.
const GROUP: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_calls_reach_other_services() {
    for round in 0..ROUNDS {
        let data = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        let stack = start_in_process(config).await.unwrap();
        let token = stack.authenticator().issue_service_token().unwrap();
        let addresses = stack.addresses().unwrap();
        let clients = Clients::connect(&Endpoints::from_addresses(addresses), 4)
            .await
            .unwrap();

        // Creating a group makes the chat service look its members up in the user service.
        // No user exists, so every call must end in NOT_FOUND from that lookup.
        let calls = (0..CALLS).map(|call| {
            let mut chat = clients.chat(call);
            let request = CreateConversationRequest {
                r#type: GROUP,
                name: format!("group {call}"),
                owner_id: 1,
                member_ids: vec![2],
            };
            let request = with_token(request, &token);
            async move { chat.create_conversation(request).await }
        });
        let results = futures::future::join_all(calls).await;

        assert_eq!(results.len(), CALLS);
        for (call, result) in results.into_iter().enumerate() {
            let status = result.expect_err("a group of missing users was created");
            assert_eq!(
                status.code(),
                tonic::Code::NotFound,
                "round {round}, call {call}: {status:?}"
            );
            assert_eq!(
                status.message(),
                "user 2 not found (field `member_ids`)",
                "round {round}, call {call}"
            );
        }

        // No refused call left a conversation behind.
        let listed = clients
            .chat(0)
            .get_conversations(with_token(GetConversationsRequest { user_id: 1 }, &token))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.conversations.is_empty(), "round {round}: {listed:?}");
        stack.shutdown().await;
    }
}
