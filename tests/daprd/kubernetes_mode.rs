//! Kubernetes mode against an operator that behaves as Dapr's own does where ours is
//! kinder: the `ComponentUpdate` stream sends no response headers until the first change.
//! The stand-in is a real gRPC server on loopback serving Dapr's operator service with
//! the documents a test gives it (JSON, as Dapr's operator sends them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use proto::operator::v1 as pb;
use proto::operator::v1::operator_server::{Operator, OperatorServer};
use serde_json::{Value, json};
use test_support::daprd::{component_names_at, daprd, metadata_at};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

type Events<T> = std::pin::Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Dapr's operator, reduced to what a sidecar asks at startup, and a component update
/// stream that answers nothing (not even headers) until a change is pushed.
struct StandIn {
    components: Mutex<Vec<Value>>,
    endpoints: Vec<Value>,
    changes: broadcast::Sender<Value>,
    subscriptions: Vec<Value>,
    /// Subscription changes: the document and whether it was deleted.
    subscription_changes: broadcast::Sender<(Value, bool)>,
}

fn docs(values: &[Value]) -> Vec<Vec<u8>> {
    values.iter().map(|v| v.to_string().into_bytes()).collect()
}

fn never<T: Send + 'static>() -> Events<T> {
    Box::pin(futures::stream::pending())
}

#[tonic::async_trait]
impl Operator for StandIn {
    type ComponentUpdateStream = Events<pb::ComponentUpdateEvent>;
    type SubscriptionUpdateStream = Events<pb::SubscriptionUpdateEvent>;
    type HTTPEndpointUpdateStream = Events<pb::HttpEndpointUpdateEvent>;
    type ConfigurationUpdateStream = Events<pb::ConfigurationUpdateEvent>;
    type ResiliencyUpdateStream = Events<pb::ResiliencyUpdateEvent>;

    async fn component_update(
        &self,
        _: Request<pb::ComponentUpdateRequest>,
    ) -> Result<Response<Self::ComponentUpdateStream>, Status> {
        // The handler returns (and tonic sends headers) only once there is a change.
        let mut rx = self.changes.subscribe();
        let first = rx
            .recv()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let event = |c: Value| pb::ComponentUpdateEvent {
            component: c.to_string().into_bytes(),
            r#type: pb::ResourceEventType::Updated as i32,
        };
        let rest = futures::stream::unfold(rx, move |mut rx| async move {
            let c = rx.recv().await.ok()?;
            Some((Ok(event(c)), rx))
        });
        let first = futures::stream::once(async move { Ok(event(first)) });
        Ok(Response::new(Box::pin(futures::StreamExt::chain(
            first, rest,
        ))))
    }

    async fn list_components(
        &self,
        _: Request<pb::ListComponentsRequest>,
    ) -> Result<Response<pb::ListComponentResponse>, Status> {
        let components = self.components.lock().expect("components");
        Ok(Response::new(pb::ListComponentResponse {
            components: docs(&components),
        }))
    }

    async fn get_configuration(
        &self,
        _: Request<pb::GetConfigurationRequest>,
    ) -> Result<Response<pb::GetConfigurationResponse>, Status> {
        Err(Status::not_found("no configuration"))
    }

    async fn list_subscriptions(
        &self,
        _: Request<()>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        Ok(Response::new(pb::ListSubscriptionsResponse::default()))
    }

    async fn get_resiliency(
        &self,
        _: Request<pb::GetResiliencyRequest>,
    ) -> Result<Response<pb::GetResiliencyResponse>, Status> {
        Err(Status::not_found("no resiliency"))
    }

    async fn list_resiliency(
        &self,
        _: Request<pb::ListResiliencyRequest>,
    ) -> Result<Response<pb::ListResiliencyResponse>, Status> {
        Ok(Response::new(pb::ListResiliencyResponse::default()))
    }

    async fn list_subscriptions_v2(
        &self,
        _: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: docs(&self.subscriptions),
        }))
    }

    async fn subscription_update(
        &self,
        _: Request<pb::SubscriptionUpdateRequest>,
    ) -> Result<Response<Self::SubscriptionUpdateStream>, Status> {
        // Like Dapr's: no headers until the first change.
        let mut rx = self.subscription_changes.subscribe();
        let first = rx
            .recv()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let event = |(s, deleted): (Value, bool)| pb::SubscriptionUpdateEvent {
            subscription: s.to_string().into_bytes(),
            r#type: if deleted {
                pb::ResourceEventType::Deleted as i32
            } else {
                pb::ResourceEventType::Created as i32
            },
        };
        let rest = futures::stream::unfold(rx, move |mut rx| async move {
            let c = rx.recv().await.ok()?;
            Some((Ok(event(c)), rx))
        });
        let first = futures::stream::once(async move { Ok(event(first)) });
        Ok(Response::new(Box::pin(futures::StreamExt::chain(
            first, rest,
        ))))
    }

    async fn list_http_endpoints(
        &self,
        _: Request<pb::ListHttpEndpointsRequest>,
    ) -> Result<Response<pb::ListHttpEndpointsResponse>, Status> {
        Ok(Response::new(pb::ListHttpEndpointsResponse {
            http_endpoints: docs(&self.endpoints),
        }))
    }

    async fn http_endpoint_update(
        &self,
        _: Request<pb::HttpEndpointUpdateRequest>,
    ) -> Result<Response<Self::HTTPEndpointUpdateStream>, Status> {
        Ok(Response::new(never()))
    }

    async fn configuration_update(
        &self,
        _: Request<pb::ConfigurationUpdateRequest>,
    ) -> Result<Response<Self::ConfigurationUpdateStream>, Status> {
        Ok(Response::new(never()))
    }

    async fn resiliency_update(
        &self,
        _: Request<pb::ResiliencyUpdateRequest>,
    ) -> Result<Response<Self::ResiliencyUpdateStream>, Status> {
        Ok(Response::new(never()))
    }
}

/// Serves the stand-in on a loopback port.
async fn serve(standin: Arc<StandIn>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the operator");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(OperatorServer::from_arc(standin))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    port
}

fn in_memory(name: &str) -> Value {
    json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "state.in-memory", "version": "v1", "metadata": []}
    })
}

fn standin(components: Vec<Value>, endpoints: Vec<Value>) -> Arc<StandIn> {
    Arc::new(StandIn {
        components: Mutex::new(components),
        endpoints,
        changes: broadcast::channel(16).0,
        subscriptions: Vec::new(),
        subscription_changes: broadcast::channel(16).0,
    })
}

fn subscription(name: &str, topic: &str) -> Value {
    json!({
        "apiVersion": "dapr.io/v2alpha1",
        "kind": "Subscription",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"pubsubname": "pubsub", "topic": topic, "routes": {"default": format!("/{topic}")}}
    })
}

fn subscribed_topics(meta: &Value) -> Vec<String> {
    let mut topics: Vec<String> = meta["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["topic"].as_str().map(str::to_string))
        .collect();
    topics.sort();
    topics
}

/// Declarative Subscriptions come from the operator at start and follow its changes.
#[tokio::test]
async fn subscriptions_follow_the_operator() {
    let operator = Arc::new(StandIn {
        subscriptions: vec![subscription("first", "t1")],
        ..Arc::into_inner(standin(vec![in_memory("statestore")], vec![])).expect("fresh")
    });
    let port = serve(operator.clone()).await;
    let sidecar = kubernetes(port).start().await;
    assert_eq!(subscribed_topics(&metadata_at(sidecar.http).await), ["t1"]);
    let _ = operator
        .subscription_changes
        .send((subscription("second", "t2"), false));
    test_support::eventually(
        Duration::from_secs(10),
        "a created subscription is listed",
        || async { subscribed_topics(&metadata_at(sidecar.http).await) == ["t1", "t2"] },
    )
    .await;
    let _ = operator
        .subscription_changes
        .send((subscription("first", "t1"), true));
    test_support::eventually(
        Duration::from_secs(10),
        "a deleted subscription is gone",
        || async { subscribed_topics(&metadata_at(sidecar.http).await) == ["t2"] },
    )
    .await;
}

fn kubernetes(operator: u16) -> test_support::daprd::Builder {
    daprd()
        .args(["--mode", "kubernetes", "--control-plane-address"])
        .arg(format!("127.0.0.1:{operator}"))
        .env("NAMESPACE", "default")
}

#[tokio::test]
async fn startup_does_not_wait_for_the_update_streams_headers() {
    let operator = standin(vec![in_memory("listed")], vec![]);
    let port = serve(operator.clone()).await;
    // `start` waits for healthz (204) with a deadline; ours used to hang right here.
    let sidecar = tokio::time::timeout(Duration::from_secs(20), kubernetes(port).start())
        .await
        .expect("the sidecar becomes healthy with the update stream still silent");
    assert_eq!(component_names_at(sidecar.http).await, ["listed"]);

    // The stream opens with the first change, and the change is applied.
    let _ = operator.changes.send(in_memory("pushed"));
    test_support::eventually(
        Duration::from_secs(10),
        "the pushed component is loaded",
        || async { component_names_at(sidecar.http).await == ["listed", "pushed"] },
    )
    .await;
    let meta = metadata_at(sidecar.http).await;
    assert_eq!(meta["id"], sidecar.app_id.as_str(), "{meta}");
}

/// The operator's JSON is decoded as Go decodes it: field names in any case.
#[tokio::test]
async fn resources_from_the_operator_match_fields_in_any_case() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app_port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let endpoint = json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "HTTPEndpoint",
        "metadata": {"name": "cased", "namespace": "default"},
        "spec": {"baseURL": format!("http://127.0.0.1:{app_port}")}
    });
    let store = json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "shouty", "namespace": "default"},
        "Spec": {"Type": "state.in-memory", "VERSION": "v1"}
    });
    let operator = standin(vec![store], vec![endpoint]);
    let port = serve(operator).await;
    let sidecar = kubernetes(port).start().await;
    assert!(!sidecar.log().contains("is required"), "{}", sidecar.log());
    assert_eq!(component_names_at(sidecar.http).await, ["shouty"]);
    let r = reqwest::get(sidecar.url("/v1.0/invoke/cased/method/hello"))
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "hi");
}

/// In Kubernetes, a sidecar under mTLS proves itself with its projected token; with none
/// (no `DAPR_SENTRY_TOKEN_FILE`, nothing mounted) it refuses to start rather than ask
/// Sentry for an INSECURE certificate, as Dapr's does.
#[tokio::test]
async fn without_a_sentry_token_an_mtls_sidecar_refuses_to_start() {
    for path in [
        "/var/run/secrets/dapr.io/sentrytoken/token",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        assert!(
            !std::path::Path::new(path).exists(),
            "this test needs a host without {path}"
        );
    }
    let operator = standin(vec![in_memory("listed")], vec![]);
    let port = serve(operator).await;
    let anchors = test_support::certs::Root::new("k8s-mode-root").pem();
    let sentry = test_support::free_port();
    let mut sidecar = kubernetes(port)
        .args(["--enable-mtls", "--sentry-address"])
        .arg(format!("127.0.0.1:{sentry}"))
        .env("DAPR_TRUST_ANCHORS", &anchors)
        .spawn();
    let status = sidecar.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success());
    let log = sidecar.log();
    assert!(
        log.contains("refusing to start without a certificate under mTLS"),
        "{log}"
    );
    assert!(!log.contains("INSECURE"), "{log}");
}
