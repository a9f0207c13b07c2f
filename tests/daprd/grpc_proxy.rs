//! gRPC proxying between two real sidecars: a generated client (grpc.health.v1) calls the
//! caller's sidecar with `dapr-app-id` metadata; the call reaches the gRPC app behind the
//! other sidecar, unary and server-streaming alike.

use test_support::daprd::{daprd, resources};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A gRPC app serving the standard health service, with `orders` serving.
async fn start_health_app() -> (tonic_health::server::HealthReporter, u16) {
    test_support::apps::grpc_health_app("orders").await
}

fn with_app_id<T>(msg: T, app: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("dapr-app-id", app.parse().expect("ascii"));
    req
}

#[tokio::test]
async fn unary_and_streaming_calls_are_proxied_to_the_app() {
    let (reporter, port) = start_health_app().await;

    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    let _callee = daprd()
        .app_id("grpc-server")
        .args([
            "--app-port",
            &port.to_string(),
            "--app-protocol",
            "grpc",
            "--config",
            &config,
        ])
        .start()
        .await;
    let caller = daprd()
        .app_id("grpc-client")
        .args(["--config", &config])
        .start()
        .await;

    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", caller.grpc))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
    let mut client = HealthClient::new(channel);
    let resp = client
        .check(with_app_id(
            HealthCheckRequest {
                service: "orders".into(),
            },
            "grpc-server",
        ))
        .await
        .expect("proxied unary call")
        .into_inner();
    assert_eq!(resp.status, ServingStatus::Serving as i32);

    // The app's own errors come back unchanged.
    let err = client
        .check(with_app_id(
            HealthCheckRequest {
                service: "unknown".into(),
            },
            "grpc-server",
        ))
        .await
        .expect_err("the app answers NOT_FOUND");
    assert_eq!(err.code(), tonic::Code::NotFound);

    // Server streaming: the watch sees the current status, then a change made in the app.
    let mut stream = client
        .watch(with_app_id(
            HealthCheckRequest {
                service: "orders".into(),
            },
            "grpc-server",
        ))
        .await
        .expect("proxied stream")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("stream item")
        .expect("an item");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    reporter
        .set_service_status("orders", tonic_health::ServingStatus::NotServing)
        .await;
    let second = stream
        .message()
        .await
        .expect("stream item")
        .expect("an item");
    assert_eq!(second.status, ServingStatus::NotServing as i32);

    // Without dapr-app-id, an unknown service is UNIMPLEMENTED; an unknown app UNAVAILABLE.
    let err = client
        .check(HealthCheckRequest {
            service: "orders".into(),
        })
        .await
        .expect_err("no app id");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    let err = client
        .check(with_app_id(
            HealthCheckRequest {
                service: "orders".into(),
            },
            "nobody",
        ))
        .await
        .expect_err("unknown app");
    assert_eq!(err.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn proxied_calls_need_the_api_token() {
    let (_reporter, port) = start_health_app().await;
    let d = daprd()
        .args(["--app-port", &port.to_string(), "--app-protocol", "grpc"])
        .env("DAPR_API_TOKEN", "proxy-secret")
        .start()
        .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", d.grpc))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    let err = client
        .check(with_app_id(
            HealthCheckRequest {
                service: "orders".into(),
            },
            &d.app_id,
        ))
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut req = with_app_id(
        HealthCheckRequest {
            service: "orders".into(),
        },
        &d.app_id,
    );
    req.metadata_mut()
        .insert("dapr-api-token", "proxy-secret".parse().expect("ascii"));
    let resp = client
        .check(req)
        .await
        .expect("with the token")
        .into_inner();
    assert_eq!(resp.status, ServingStatus::Serving as i32);
}
