//! Stand-in apps for a sidecar to call, on real loopback sockets.

use tonic_health::server::HealthReporter;

/// A gRPC app serving only the standard health service, with `service` reported as
/// serving; returns the reporter (to change the status) and the app's port.
pub async fn grpc_health_app(service: &str) -> (HealthReporter, u16) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(service, tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let port = listener.local_addr().expect("app address").port();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    (reporter, port)
}
