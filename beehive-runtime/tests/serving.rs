//! The serving layers end to end: tokens, deadlines over two hops, health, reflection, load
//! shedding and metrics, over real gRPC connections on 127.0.0.1.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use beehive_runtime::auth::{Authenticator, Claims};
use beehive_runtime::client::ServiceChannel;
use beehive_runtime::discovery::{Discovery, StaticDiscovery};
use support::{Ping, call_echo, direct, ping, start_echo, test_config};

fn authenticator(secret: &str) -> Authenticator {
    Authenticator::new(secret.as_bytes(), Duration::from_secs(7 * 24 * 3600))
        .unwrap_or_else(|err| panic!("{err}"))
}

fn with_token(token: &str, message: Ping) -> tonic::Request<Ping> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .unwrap_or_else(|err| panic!("{err}"));
    request.metadata_mut().insert("authorization", value);
    request
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn claims_json(sub: &str, exp: u64) -> String {
    format!(r#"{{"sub":"{sub}","exp":{exp},"iat":{}}}"#, exp - 60)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[tokio::test]
async fn bad_tokens_get_unauthenticated() {
    let config = test_config(false);
    let (server, record) = start_echo(&config, Duration::ZERO, None, None).await;
    let channel = direct(server.local_addr());
    let ours = authenticator(&config.auth.jwt_secret);

    let valid = ours.issue_user_token(42).unwrap_or_default();
    let pong = ping(channel.clone(), with_token(&valid, Ping::default())).await;
    assert_eq!(
        pong.map(|pong| pong.caller).ok(),
        Some("User(42)".to_owned())
    );

    let expired = ours
        .sign_claims(&Claims {
            sub: "42".to_owned(),
            exp: now() - 120,
            iat: now() - 3600,
            role: None,
        })
        .unwrap_or_default();
    let foreign = authenticator("someone-else-secret-0123456789")
        .issue_user_token(42)
        .unwrap_or_default();
    let header_none = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(claims_json("42", now() + 3600).as_bytes());
    let alg_none = format!("{header_none}.{payload}.");
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = base64url(claims_json("1", now() + 3600).as_bytes());
    let tampered = parts.join(".");

    let calls_before = record.calls.load(Ordering::SeqCst);
    for (name, token) in [
        ("expired", expired.as_str()),
        ("foreign key", foreign.as_str()),
        ("alg none", alg_none.as_str()),
        ("tampered", tampered.as_str()),
        ("garbage", "not-a-jwt"),
    ] {
        let result = ping(channel.clone(), with_token(token, Ping::default())).await;
        let status = result.err();
        let code = status.as_ref().map(|status| status.code());
        assert_eq!(code, Some(tonic::Code::Unauthenticated), "{name} token");
        let expected = if name == "expired" {
            "unauthenticated: token expired, log in again to get a new one"
        } else {
            "unauthenticated: invalid token"
        };
        let message = status.as_ref().map(|status| status.message());
        assert_eq!(message, Some(expected), "{name} token");
    }
    assert_eq!(
        record.calls.load(Ordering::SeqCst),
        calls_before,
        "logic ran for a bad token"
    );

    let anonymous = ping(channel.clone(), tonic::Request::new(Ping::default())).await;
    let code = anonymous.err().map(|status| status.code());
    assert_eq!(code, Some(tonic::Code::Unauthenticated));
    let service = ours.issue_service_token().unwrap_or_default();
    let pong = ping(channel, with_token(&service, Ping::default())).await;
    assert_eq!(
        pong.map(|pong| pong.caller).ok(),
        Some("Service".to_owned())
    );

    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

/// Puts `authorization: <value>` on `request`.
fn with_authorization<T>(value: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = value.parse().unwrap_or_else(|err| panic!("{err}"));
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test]
async fn stale_tokens_ignored_by_public_calls() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let config = test_config(false);
    let record = Arc::new(support::Record::default());
    let logic = Arc::new(support::EchoLogic {
        name: std::sync::Mutex::new(String::new()),
        delay: Duration::ZERO,
        next: None,
        record: record.clone(),
    });
    let server = beehive_runtime::server::ServerBuilder::new(Arc::new(config.clone()), "echo")
        .listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .add_service(support::EchoServer(logic))
        .start()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let channel = direct(server.local_addr());
    let expired = authenticator(&config.auth.jwt_secret)
        .sign_claims(&Claims {
            sub: "42".to_owned(),
            exp: now() - 120,
            iat: now() - 3600,
            role: None,
        })
        .unwrap_or_default();

    for header in [
        "Bearer expired.garbage.token".to_owned(),
        format!("Bearer {expired}"),
        "Basic abc".to_owned(),
    ] {
        let pong = call_echo(
            channel.clone(),
            support::PUBLIC_PING_PATH,
            with_authorization(&header, Ping::default()),
        )
        .await;
        assert_eq!(
            pong.map(|pong| pong.caller).ok(),
            Some("Anonymous".to_owned()),
            "public call with `{header}`"
        );

        let mut health = HealthClient::new(channel.clone());
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let status = health
            .check(with_authorization(&header, request))
            .await
            .map(|response| response.into_inner().status());
        assert_eq!(
            status.ok(),
            Some(ServingStatus::Serving),
            "health with `{header}`"
        );

        let mut reflection = ServerReflectionClient::new(channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let stream = futures::stream::iter([request]);
        let listed = match reflection
            .server_reflection_info(with_authorization(&header, stream))
            .await
        {
            Ok(response) => response.into_inner().message().await.ok().flatten(),
            Err(status) => panic!("reflection with `{header}`: {status}"),
        };
        let response = listed.and_then(|listed| listed.message_response);
        assert!(
            matches!(response, Some(MessageResponse::ListServicesResponse(_))),
            "reflection with `{header}`: {response:?}"
        );
    }
    assert_eq!(record.calls.load(Ordering::SeqCst), 3);

    let calls_before = record.calls.load(Ordering::SeqCst);
    for (header, expected) in [
        (
            "Bearer expired.garbage.token",
            "unauthenticated: invalid token",
        ),
        (
            &format!("Bearer {expired}") as &str,
            "unauthenticated: token expired, log in again to get a new one",
        ),
        (
            "Basic abc",
            "unauthenticated: invalid authorization header: expected `Bearer <token>`",
        ),
    ] {
        let status = ping(channel.clone(), with_authorization(header, Ping::default()))
            .await
            .err();
        let code = status.as_ref().map(|status| status.code());
        assert_eq!(code, Some(tonic::Code::Unauthenticated), "`{header}`");
        let message = status.as_ref().map(|status| status.message());
        assert_eq!(message, Some(expected), "`{header}`");
    }
    assert_eq!(
        record.calls.load(Ordering::SeqCst),
        calls_before,
        "logic ran for a bad token"
    );
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn deadline_reaches_two_hops_down() {
    let config = test_config(true);
    let discovery = Arc::new(StaticDiscovery::empty());
    let shared: Arc<dyn Discovery> = discovery.clone();
    let factory =
        beehive_runtime::client::ClientFactory::new(Arc::new(config.clone()), shared.clone())
            .unwrap_or_else(|err| panic!("{err}"));

    let (third, third_record) = start_echo(
        &config,
        Duration::ZERO,
        None,
        Some((shared.clone(), "hop-c")),
    )
    .await;
    let (second, _) = start_echo(
        &config,
        Duration::ZERO,
        Some(factory.channel("hop-c")),
        Some((shared.clone(), "hop-b")),
    )
    .await;
    let (first, first_record) = start_echo(
        &config,
        Duration::ZERO,
        Some(factory.channel("hop-b")),
        Some((shared.clone(), "hop-a")),
    )
    .await;

    let mut request = tonic::Request::new(Ping {
        delay_ms: 0,
        hops: 2,
        ..Ping::default()
    });
    request.set_timeout(Duration::from_millis(1500));
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    request.metadata_mut().insert(
        "traceparent",
        traceparent.parse().unwrap_or_else(|err| panic!("{err}")),
    );
    let pong = ping(factory.channel("hop-a"), request)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(pong.server, third.local_addr().to_string());
    assert_eq!(pong.trace_id, trace_id);
    assert!(pong.remaining_ms <= 1500, "{}", pong.remaining_ms);
    assert!(pong.remaining_ms > 1000, "{}", pong.remaining_ms);
    let first_seen = first_record
        .remaining_ms
        .lock()
        .map(|seen| seen.clone())
        .unwrap_or_default();
    assert_eq!(first_seen.len(), 1);
    assert!(
        first_seen[0] >= pong.remaining_ms,
        "{first_seen:?} vs {}",
        pong.remaining_ms
    );

    // Enforced: the last hop's sleep outlasts the first caller's 400 ms, so the call fails with
    // DEADLINE_EXCEEDED quickly and the last hop's logic is cut off.
    let finished_before = third_record.finished.load(Ordering::SeqCst);
    let mut request = tonic::Request::new(Ping {
        delay_ms: 2000,
        hops: 2,
        ..Ping::default()
    });
    request.set_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let result = ping(factory.channel("hop-a"), request).await;
    assert_eq!(
        result.as_ref().err().map(|status| status.code()),
        Some(tonic::Code::DeadlineExceeded),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        third_record.finished.load(Ordering::SeqCst),
        finished_before
    );
    let third_seen = third_record
        .remaining_ms
        .lock()
        .map(|seen| seen.clone())
        .unwrap_or_default();
    assert!(
        third_seen.last().is_some_and(|ms| *ms <= 400),
        "{third_seen:?}"
    );

    for server in [first, second, third] {
        server
            .shutdown()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let config = test_config(true);
    let (server, _) = start_echo(&config, Duration::ZERO, None, None).await;
    let mut health = HealthClient::new(direct(server.local_addr()));
    for name in ["", support::SERVICE_NAME] {
        let response = health
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            response.into_inner().status(),
            ServingStatus::Serving,
            "{name}"
        );
    }
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn load_shedding_rejects_at_once() {
    let mut config = test_config(true);
    config.server.max_concurrent_calls = 1;
    let (server, record) = start_echo(&config, Duration::ZERO, None, None).await;
    let channel = direct(server.local_addr());

    let slow = tokio::spawn(ping(
        channel.clone(),
        tonic::Request::new(Ping {
            delay_ms: 1500,
            hops: 0,
            ..Ping::default()
        }),
    ));
    while record.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let shed = ping(channel.clone(), tonic::Request::new(Ping::default())).await;
    assert_eq!(
        shed.err().map(|status| status.code()),
        Some(tonic::Code::ResourceExhausted)
    );
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(record.calls.load(Ordering::SeqCst), 1);

    let first = slow.await.unwrap_or_else(|err| panic!("{err}"));
    assert!(first.is_ok(), "{first:?}");
    let after = ping(channel, tonic::Request::new(Ping::default())).await;
    assert!(after.is_ok(), "{after:?}");
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn shutdown_drains_calls_in_flight() {
    let config = test_config(true);
    let (server, record) = start_echo(&config, Duration::ZERO, None, None).await;
    let address = server.local_addr();
    let channel = direct(address);
    let slow = tokio::spawn(ping(
        channel.clone(),
        tonic::Request::new(Ping {
            delay_ms: 500,
            hops: 0,
            ..Ping::default()
        }),
    ));
    while record.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let drained = slow.await.unwrap_or_else(|err| panic!("{err}"));
    assert!(drained.is_ok(), "{drained:?}");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn metrics_count_calls() {
    let config = test_config(true);
    let admin = beehive_runtime::telemetry::AdminServer::start(
        "127.0.0.1:0".parse().unwrap_or_else(|err| panic!("{err}")),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    let (server, _) = start_echo(&config, Duration::ZERO, None, None).await;
    let discovery = Arc::new(StaticDiscovery::empty());
    discovery.set("echo", [server.local_addr().to_string()]);
    let channel = ServiceChannel::balanced(
        "echo",
        discovery.watch("echo"),
        beehive_runtime::config::BalancerKind::P2c,
        Default::default(),
    );
    for _ in 0..3 {
        let pong = ping(channel.clone(), tonic::Request::new(Ping::default())).await;
        assert!(pong.is_ok(), "{pong:?}");
    }

    let body = http_get(admin.local_addr(), "/metrics").await;
    let server_line = body.lines().find(|line| {
        line.starts_with("rpc_server_requests_total")
            && line.contains("/test.Echo/Ping")
            && line.contains("code=\"OK\"")
    });
    assert!(
        server_line.is_some_and(|line| line.ends_with(" 3")),
        "{body}"
    );
    assert!(
        body.contains("rpc_server_request_duration_ms_bucket"),
        "{body}"
    );
    let client_line = body.lines().find(|line| {
        line.starts_with("rpc_client_requests_total") && line.contains("/test.Echo/Ping")
    });
    assert!(
        client_line.is_some_and(|line| line.ends_with(" 3")),
        "{body}"
    );
    assert_eq!(http_get(admin.local_addr(), "/healthz").await, "ok\n");
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    admin.stop();
}

/// Sends one HTTP/1.0 GET and returns the body.
async fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Sends one reflection request over v1 and returns its response.
async fn reflect(
    address: std::net::SocketAddr,
    request: tonic_reflection::pb::v1::server_reflection_request::MessageRequest,
) -> tonic_reflection::pb::v1::server_reflection_response::MessageResponse {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;

    let mut client = ServerReflectionClient::new(direct(address));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap_or_else(|err| panic!("{err}"))
        .into_inner();
    let response = responses
        .message()
        .await
        .unwrap_or_else(|err| panic!("{err}"))
        .unwrap_or_else(|| panic!("no reflection response"));
    response
        .message_response
        .unwrap_or_else(|| panic!("empty reflection response"))
}

/// Returns the service names reflection lists on `address`, sorted.
async fn reflected_services(address: std::net::SocketAddr) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let response = reflect(address, MessageRequest::ListServices(String::new())).await;
    let MessageResponse::ListServicesResponse(list) = response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let mut names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn reflection_lists_services() {
    let config = test_config(true);
    let server = beehive_runtime::server::ServerBuilder::new(Arc::new(config), "reflected")
        .listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .start()
        .await
        .unwrap_or_else(|err| panic!("{err}"));

    assert_eq!(
        reflected_services(server.local_addr()).await,
        vec![
            "grpc.health.v1.Health".to_owned(),
            "grpc.reflection.v1.ServerReflection".to_owned(),
            "grpc.reflection.v1alpha.ServerReflection".to_owned(),
        ]
    );
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

/// Encodes a descriptor set of one file with the services `test.Echo` and `test.Unserved`.
fn two_service_descriptor_set() -> Vec<u8> {
    use prost::Message;
    use prost_types::{
        DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto,
    };

    let service = |name: &str| ServiceDescriptorProto {
        name: Some(name.to_owned()),
        method: vec![MethodDescriptorProto {
            name: Some("Ping".to_owned()),
            input_type: Some(".test.Ping".to_owned()),
            output_type: Some(".test.Ping".to_owned()),
            ..MethodDescriptorProto::default()
        }],
        ..ServiceDescriptorProto::default()
    };
    let file = FileDescriptorProto {
        name: Some("test/echo.proto".to_owned()),
        package: Some("test".to_owned()),
        message_type: vec![DescriptorProto {
            name: Some("Ping".to_owned()),
            ..DescriptorProto::default()
        }],
        service: vec![service("Echo"), service("Unserved")],
        syntax: Some("proto3".to_owned()),
        ..FileDescriptorProto::default()
    };
    FileDescriptorSet { file: vec![file] }.encode_to_vec()
}

#[tokio::test]
async fn reflection_lists_only_served_services() {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let descriptor_set = two_service_descriptor_set();
    let config = test_config(true);
    let server = beehive_runtime::server::ServerBuilder::new(Arc::new(config), "reflected")
        .listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .descriptor_set(&descriptor_set)
        .add_service(support::BareEchoServer)
        .start()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let address = server.local_addr();

    assert_eq!(
        reflected_services(address).await,
        vec![
            "grpc.health.v1.Health".to_owned(),
            "grpc.reflection.v1.ServerReflection".to_owned(),
            "grpc.reflection.v1alpha.ServerReflection".to_owned(),
            "test.Echo".to_owned(),
        ],
        "test.Unserved is in the descriptor set but not served"
    );
    let health = reflect(
        address,
        MessageRequest::FileContainingSymbol("grpc.health.v1.Health".to_owned()),
    )
    .await;
    let MessageResponse::FileDescriptorResponse(files) = health else {
        panic!("health's descriptor not served: {health:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    let echo = reflect(
        address,
        MessageRequest::FileContainingSymbol("test.Echo".to_owned()),
    )
    .await;
    assert!(
        matches!(echo, MessageResponse::FileDescriptorResponse(_)),
        "{echo:?}"
    );

    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

/// A request body of fixed bytes: one data frame, then the end.
struct RawBody(Option<bytes::Bytes>);

impl http_body::Body for RawBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }
}

/// Frames `message` as one gRPC message: compressed flag, big-endian length, bytes. `length`
/// overrides the real length in the header.
fn grpc_frame(compressed: bool, length: Option<u32>, message: &[u8]) -> Vec<u8> {
    let length = length.unwrap_or_else(|| u32::try_from(message.len()).unwrap_or(u32::MAX));
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// Posts `body` as a gRPC request to `path` and returns the call's status, read from the
/// headers of a trailers-only response or else from the trailers.
async fn post_raw(address: std::net::SocketAddr, path: &str, body: Vec<u8>) -> tonic::Status {
    use tower::{Service, ServiceExt};

    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{address}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(beehive_runtime::client::Body::new(RawBody(Some(
            body.into(),
        ))))
        .unwrap_or_else(|err| panic!("{err}"));
    let mut channel = direct(address);
    let ready = channel.ready().await.unwrap_or_else(|err| panic!("{err}"));
    let response = ready
        .call(request)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    let mut body = std::pin::Pin::new(&mut body);
    while let Some(frame) =
        futures::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await
    {
        let frame = frame.unwrap_or_else(|err| panic!("{err}"));
        if let Some(trailers) = frame.trailers_ref() {
            return tonic::Status::from_header_map(trailers)
                .unwrap_or_else(|| panic!("trailers without grpc-status: {trailers:?}"));
        }
    }
    panic!("response without grpc-status")
}

#[tokio::test]
async fn undecodable_requests_get_invalid_argument() {
    let metrics =
        beehive_runtime::telemetry::metrics_handle().unwrap_or_else(|err| panic!("{err}"));
    let config = test_config(false);
    let (server, record) = start_echo(&config, Duration::ZERO, None, None).await;
    let address = server.local_addr();
    let path = support::PUBLIC_PING_PATH;

    let cases: [(&str, Vec<u8>, tonic::Code, &str); 5] = [
        (
            "invalid UTF-8 in a string",
            grpc_frame(false, None, &[0x1a, 0x02, 0xff, 0xfe]),
            tonic::Code::InvalidArgument,
            "invalid request message: Ping.note: invalid string value: data is not UTF-8 encoded",
        ),
        (
            "bad varint",
            grpc_frame(
                false,
                None,
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
            ),
            tonic::Code::InvalidArgument,
            "invalid request message: Ping.delay_ms: invalid varint",
        ),
        (
            "wrong wire type",
            grpc_frame(false, None, &[0x0a, 0x01, 0x00]),
            tonic::Code::InvalidArgument,
            "invalid request message: Ping.delay_ms: invalid wire type: LengthDelimited (expected Varint)",
        ),
        (
            "compressed flag without grpc-encoding",
            grpc_frame(true, None, &[0x08, 0x01]),
            tonic::Code::InvalidArgument,
            "invalid request message: protocol error: received message with compressed-flag but no grpc-encoding was specified",
        ),
        (
            "over the size limit",
            grpc_frame(false, Some(17 << 20), &[]),
            tonic::Code::ResourceExhausted,
            "request message too large: found 17825792 bytes, the limit is: 4194304 bytes",
        ),
    ];
    for (name, body, code, message) in cases {
        let status = post_raw(address, path, body).await;
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert_eq!(status.message(), message, "{name}");
    }
    assert_eq!(record.calls.load(Ordering::SeqCst), 0, "logic ran");

    let rendered = metrics.render();
    let count = |code: &str| {
        rendered
            .lines()
            .find(|line| {
                line.starts_with("rpc_server_requests_total")
                    && line.contains(path)
                    && line.contains(&format!("code=\"{code}\""))
            })
            .and_then(|line| line.rsplit(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(
        count("INVALID_ARGUMENT"),
        Some("4".to_owned()),
        "{rendered}"
    );
    assert_eq!(
        count("RESOURCE_EXHAUSTED"),
        Some("1".to_owned()),
        "{rendered}"
    );

    let valid = post_raw(address, path, grpc_frame(false, None, &[0x08, 0x01])).await;
    assert_eq!(valid.code(), tonic::Code::Ok, "{valid:?}");
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test]
async fn unknown_service_names_served_ones() {
    let config = test_config(true);
    let (server, record) = start_echo(&config, Duration::ZERO, None, None).await;
    let channel = direct(server.local_addr());

    let status = call_echo(
        channel.clone(),
        "/user.UserService/Login",
        tonic::Request::new(Ping::default()),
    )
    .await
    .err();
    assert_eq!(
        status.as_ref().map(tonic::Status::code),
        Some(tonic::Code::Unimplemented)
    );
    assert_eq!(
        status.as_ref().map(tonic::Status::message),
        Some(
            "service `user.UserService` is not served on this port, which serves test.Echo, grpc.health.v1.Health"
        )
    );
    assert_eq!(record.calls.load(Ordering::SeqCst), 0);

    let served = ping(channel, tonic::Request::new(Ping::default())).await;
    assert!(served.is_ok(), "{served:?}");
    server
        .shutdown()
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}
