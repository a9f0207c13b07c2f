//! Invoking a gRPC app (`--app-protocol grpc`) through two sidecars over the gRPC API, as a
//! caller written against Dapr's protos does: the payload's `Any.type_url` arrives at the
//! app as sent and comes back as the app set it; an app whose server allows 100 streams
//! per connection still takes more calls than that at once; `--app-max-concurrency` caps
//! the calls the app sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dapr::dapr::proto::common::v1::{InvokeRequest, InvokeResponse};
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_server::{AppCallback, AppCallbackServer};
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use prost_types::Any;
use test_support::daprd::{Sidecar, daprd};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

const PING_REQUEST: &str = "type.googleapis.com/test.PingRequest";
const PING_RESPONSE: &str = "type.googleapis.com/test.PingResponse";

/// `ping` answers with the type it was sent; `gather` holds every call until `expect`
/// calls are in the app at once (or 15 s pass); `hold` keeps a call 50 ms. All count the
/// calls in flight and remember the most seen at once.
#[derive(Default)]
struct App {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    gathered: Notify,
    expect: usize,
}

#[tonic::async_trait]
impl AppCallback for App {
    async fn on_invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        let req = request.into_inner();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let answer = match req.method.as_str() {
            "ping" => {
                let got = req.data.map(|d| d.type_url).unwrap_or_default();
                Ok(Any {
                    type_url: PING_RESPONSE.into(),
                    value: format!("got {got}").into_bytes(),
                })
            }
            "gather" => {
                let all_here = self.gathered.notified();
                if now >= self.expect {
                    self.gathered.notify_waiters();
                    Ok(Any::default())
                } else if tokio::time::timeout(Duration::from_secs(15), all_here)
                    .await
                    .is_ok()
                {
                    Ok(Any::default())
                } else {
                    Err(Status::deadline_exceeded("not every call arrived"))
                }
            }
            "hold" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Any::default())
            }
            other => Err(Status::unimplemented(other.to_string())),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer.map(|data| {
            Response::new(InvokeResponse {
                data: Some(data),
                content_type: "application/x-protobuf".into(),
            })
        })
    }

    async fn list_topic_subscriptions(
        &self,
        _: Request<()>,
    ) -> Result<Response<rt::ListTopicSubscriptionsResponse>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn on_topic_event(
        &self,
        _: Request<rt::TopicEventRequest>,
    ) -> Result<Response<rt::TopicEventResponse>, Status> {
        Err(Status::unimplemented("no topics"))
    }

    async fn list_input_bindings(
        &self,
        _: Request<()>,
    ) -> Result<Response<rt::ListInputBindingsResponse>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn on_binding_event(
        &self,
        _: Request<rt::BindingEventRequest>,
    ) -> Result<Response<rt::BindingEventResponse>, Status> {
        Err(Status::unimplemented("no bindings"))
    }

    async fn on_bulk_topic_event(
        &self,
        _: Request<rt::TopicEventBulkRequest>,
    ) -> Result<Response<rt::TopicEventBulkResponse>, Status> {
        Err(Status::unimplemented("no topics"))
    }

    async fn on_job_event(
        &self,
        _: Request<rt::JobEventRequest>,
    ) -> Result<Response<rt::JobEventResponse>, Status> {
        Err(Status::unimplemented("no jobs"))
    }
}

/// Serves `app` on loopback with the stream limit most gRPC servers announce.
async fn serve(app: Arc<App>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .max_concurrent_streams(Some(100))
            .add_service(AppCallbackServer::from_arc(app))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    port
}

/// The app's sidecar (gRPC app protocol, extra flags) and a caller's sidecar.
async fn pair(app: Arc<App>, extra: &[&str]) -> (Sidecar, Sidecar) {
    let port = serve(app).await;
    let mut callee = daprd()
        .args(["--app-protocol", "grpc", "--app-port"])
        .arg(port.to_string());
    for a in extra {
        callee = callee.arg(*a);
    }
    (callee.start().await, daprd().start().await)
}

async fn client(sidecar: &Sidecar) -> DaprClient<tonic::transport::Channel> {
    DaprClient::connect(format!("http://127.0.0.1:{}", sidecar.grpc))
        .await
        .expect("connect to the sidecar's gRPC API")
}

fn invoke(app_id: &str, method: &str, data: Any) -> rt::InvokeServiceRequest {
    rt::InvokeServiceRequest {
        id: app_id.to_string(),
        message: Some(InvokeRequest {
            method: method.into(),
            data: Some(data),
            content_type: "application/x-protobuf".into(),
            http_extension: None,
        }),
    }
}

#[tokio::test]
async fn the_payload_type_url_travels_both_ways() {
    let (callee, caller) = pair(Arc::new(App::default()), &[]).await;
    let data = Any {
        type_url: PING_REQUEST.into(),
        value: b"hello".to_vec(),
    };
    // Through the caller's sidecar and the callee's, and on the callee's own sidecar.
    for via in [&caller, &callee] {
        let resp = client(via)
            .await
            .invoke_service(invoke(&callee.app_id, "ping", data.clone()))
            .await
            .expect("invoke")
            .into_inner();
        let any = resp.data.expect("data");
        assert_eq!(any.type_url, PING_RESPONSE, "the app's type comes back");
        assert_eq!(
            String::from_utf8_lossy(&any.value),
            format!("got {PING_REQUEST}"),
            "the caller's type reaches the app"
        );
    }
}

#[tokio::test]
async fn more_calls_at_once_than_one_connection_allows() {
    const CALLS: usize = 150;
    let app = Arc::new(App {
        expect: CALLS,
        ..App::default()
    });
    let (callee, caller) = pair(app.clone(), &[]).await;
    let c = client(&caller).await;
    let calls = (0..CALLS).map(|_| {
        let mut c = c.clone();
        let req = invoke(&callee.app_id, "gather", Any::default());
        tokio::spawn(async move { c.invoke_service(req).await.map(|_| ()) })
    });
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| match r.expect("task") {
            Ok(()) => None,
            Err(s) => Some(format!("{:?}: {}", s.code(), s.message())),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {CALLS} calls failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(app.peak.load(Ordering::SeqCst), CALLS);
}

#[tokio::test]
async fn app_max_concurrency_caps_calls_to_a_grpc_app() {
    let app = Arc::new(App::default());
    let (callee, caller) = pair(app.clone(), &["--app-max-concurrency", "4"]).await;
    let c = client(&caller).await;
    let calls = (0..24).map(|_| {
        let mut c = c.clone();
        let req = invoke(&callee.app_id, "hold", Any::default());
        tokio::spawn(async move { c.invoke_service(req).await.map(|_| ()) })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("task")
            .expect("every call succeeds, waiting its turn");
    }
    let peak = app.peak.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&peak),
        "at most 4 calls at once reach the app (and some overlap); saw {peak}"
    );
}
