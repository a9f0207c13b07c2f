//! The operator API as sidecars call it, against caches that follow a mocked API server
//! (`FakeApi`): per-namespace answers, Kubernetes secrets resolved into components,
//! update streams, and under mTLS (a real TLS handshake over an in-memory pipe, with
//! certificates from `test_support::certs`) the namespace taken from the certificate.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use test_support::certs::Root;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::StreamExt;

use super::*;
use crate::cache::tests::{FakeApi, following, object};
use crate::kinds::{self, Kind};

async fn caches(api: &FakeApi) -> Caches {
    Caches {
        components: following(api, kinds::COMPONENT).await,
        configurations: following(api, kinds::CONFIGURATION).await,
        subscriptions: following(api, kinds::SUBSCRIPTION).await,
        resiliencies: following(api, kinds::RESILIENCY).await,
        http_endpoints: following(api, kinds::HTTP_ENDPOINT).await,
    }
}

async fn operator(api: &FakeApi) -> OperatorApi {
    OperatorApi::new(caches(api).await, api.client(), false)
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn name_of(bytes: &[u8]) -> String {
    json_of(bytes)["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn component(ns: &str, name: &str, rv: u32, metadata: Value) -> Value {
    object(
        kinds::COMPONENT,
        ns,
        name,
        rv,
        json!({"type": "state.redis", "version": "v1", "metadata": metadata}),
    )
}

fn plain(kind: Kind, ns: &str, name: &str) -> Value {
    object(kind, ns, name, 1, json!({}))
}

#[tokio::test]
async fn components_are_listed_per_namespace_with_kubernetes_secrets_resolved() {
    let api = FakeApi::new();
    api.secret(
        "shop",
        "redis",
        &[("host", b"redis:6379"), ("redis", b"\x00binary")],
    );
    let mut vaulted = component(
        "shop",
        "vaulted",
        1,
        json!([{"name": "token", "secretKeyRef": {"name": "redis", "key": "host"}}]),
    );
    vaulted["auth"] = json!({"secretStore": "vault"});
    api.set_list(
        kinds::COMPONENT,
        vec![
            component(
                "shop",
                "cache",
                1,
                json!([
                    {"name": "redisHost", "secretKeyRef": {"name": "redis", "key": "host"}},
                    {"name": "keyPrefix", "value": "orders"},
                    {"name": "password", "secretKeyRef": {"name": "redis"}},
                    {"name": "missing", "secretKeyRef": {"name": "nowhere", "key": "x"}},
                    {"name": "badKey", "secretKeyRef": {"name": "redis", "key": "nokey"}},
                ]),
            ),
            vaulted,
            component("other", "foreign", 1, json!([])),
        ],
    );
    let operator = operator(&api).await;
    let listed = operator
        .list_components(Request::new(pb::ListComponentsRequest {
            namespace: "shop".into(),
        }))
        .await
        .expect("listed")
        .into_inner()
        .components;
    let names: Vec<String> = listed.iter().map(|c| name_of(c)).collect();
    assert_eq!(names, ["cache", "vaulted"], "only shop's, in name order");

    let cache = json_of(&listed[0]);
    let items = &cache["spec"]["metadata"];
    assert_eq!(items[0]["value"], b64(b"redis:6379"), "resolved, base64");
    assert_eq!(
        items[0]["secretKeyRef"]["name"], "redis",
        "the reference stays"
    );
    assert_eq!(items[1]["value"], "orders", "plain values untouched");
    assert_eq!(
        items[2]["value"],
        b64(b"\x00binary"),
        "the key defaults to the secret's name; binary survives"
    );
    assert!(
        items[3].get("value").is_none(),
        "a missing secret: unresolved"
    );
    assert!(items[4].get("value").is_none(), "a missing key: unresolved");

    let vaulted = json_of(&listed[1]);
    assert!(
        vaulted["spec"]["metadata"][0].get("value").is_none(),
        "another secret store's references are the sidecar's to resolve"
    );
}

#[tokio::test]
async fn without_mtls_a_namespace_is_required() {
    let api = FakeApi::new();
    let operator = operator(&api).await;
    let err = operator
        .list_components(Request::new(pb::ListComponentsRequest {
            namespace: String::new(),
        }))
        .await
        .expect_err("no namespace");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = operator
        .list_resiliency(Request::new(pb::ListResiliencyRequest {
            namespace: String::new(),
        }))
        .await
        .expect_err("no namespace");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn configurations_and_resiliencies_are_got_by_name_within_the_namespace() {
    let api = FakeApi::new();
    api.set_list(
        kinds::CONFIGURATION,
        vec![
            plain(kinds::CONFIGURATION, "shop", "appcfg"),
            plain(kinds::CONFIGURATION, "other", "othercfg"),
        ],
    );
    api.set_list(
        kinds::RESILIENCY,
        vec![plain(kinds::RESILIENCY, "shop", "retries")],
    );
    let operator = operator(&api).await;
    let got = operator
        .get_configuration(Request::new(pb::GetConfigurationRequest {
            name: "appcfg".into(),
            namespace: "shop".into(),
        }))
        .await
        .expect("found")
        .into_inner();
    let got = json_of(&got.configuration);
    assert_eq!(got["metadata"]["namespace"], "shop");
    assert_eq!(got["kind"], "Configuration");

    let err = operator
        .get_configuration(Request::new(pb::GetConfigurationRequest {
            name: "othercfg".into(),
            namespace: "shop".into(),
        }))
        .await
        .expect_err("another namespace's");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("Configuration"), "{}", err.message());

    let got = operator
        .get_resiliency(Request::new(pb::GetResiliencyRequest {
            name: "retries".into(),
            namespace: "shop".into(),
        }))
        .await
        .expect("found")
        .into_inner();
    assert_eq!(name_of(&got.resiliency), "retries");
    let err = operator
        .get_resiliency(Request::new(pb::GetResiliencyRequest {
            name: "retries".into(),
            namespace: "other".into(),
        }))
        .await
        .expect_err("not there");
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn lists_of_each_kind_are_per_namespace_except_the_pre_namespaced_subscriptions() {
    let api = FakeApi::new();
    api.set_list(
        kinds::SUBSCRIPTION,
        vec![
            plain(kinds::SUBSCRIPTION, "shop", "orders"),
            plain(kinds::SUBSCRIPTION, "other", "audit"),
        ],
    );
    api.set_list(
        kinds::RESILIENCY,
        vec![
            plain(kinds::RESILIENCY, "shop", "b"),
            plain(kinds::RESILIENCY, "shop", "a"),
            plain(kinds::RESILIENCY, "other", "c"),
        ],
    );
    api.set_list(
        kinds::HTTP_ENDPOINT,
        vec![
            plain(kinds::HTTP_ENDPOINT, "other", "github"),
            plain(kinds::HTTP_ENDPOINT, "shop", "payments"),
        ],
    );
    let operator = operator(&api).await;
    let all = operator
        .list_subscriptions(Request::new(()))
        .await
        .expect("v1")
        .into_inner()
        .subscriptions;
    let mut names: Vec<String> = all.iter().map(|s| name_of(s)).collect();
    names.sort();
    assert_eq!(names, ["audit", "orders"], "v1: every namespace, as Dapr's");

    let v2 = operator
        .list_subscriptions_v2(Request::new(pb::ListSubscriptionsRequest {
            namespace: "shop".into(),
        }))
        .await
        .expect("v2")
        .into_inner()
        .subscriptions;
    assert_eq!(
        v2.iter().map(|s| name_of(s)).collect::<Vec<_>>(),
        ["orders"]
    );
    assert_eq!(json_of(&v2[0])["apiVersion"], "dapr.io/v2alpha1");

    let resiliencies = operator
        .list_resiliency(Request::new(pb::ListResiliencyRequest {
            namespace: "shop".into(),
        }))
        .await
        .expect("resiliencies")
        .into_inner()
        .resiliencies;
    assert_eq!(
        resiliencies.iter().map(|r| name_of(r)).collect::<Vec<_>>(),
        ["a", "b"]
    );

    let endpoints = operator
        .list_http_endpoints(Request::new(pb::ListHttpEndpointsRequest {
            namespace: "shop".into(),
        }))
        .await
        .expect("endpoints")
        .into_inner()
        .http_endpoints;
    assert_eq!(
        endpoints.iter().map(|e| name_of(e)).collect::<Vec<_>>(),
        ["payments"]
    );
}

#[tokio::test]
async fn a_list_waits_for_the_first_sync() {
    let api = FakeApi::new();
    api.set_list(
        kinds::COMPONENT,
        vec![component("shop", "late", 1, json!([]))],
    );
    let unsynced = Cache::new(kinds::COMPONENT);
    let caches = Caches {
        components: unsynced.clone(),
        ..caches(&api).await
    };
    let operator = Arc::new(OperatorApi::new(caches, api.client(), false));
    let call = tokio::spawn({
        let operator = operator.clone();
        async move {
            operator
                .list_components(Request::new(pb::ListComponentsRequest {
                    namespace: "shop".into(),
                }))
                .await
                .map(|r| r.into_inner().components.len())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !call.is_finished(),
        "no answer from an empty, unsynced cache"
    );
    let resource = kinds::COMPONENT.api_resource();
    tokio::spawn(unsynced.run(kube::api::Api::all_with(api.client(), &resource)));
    let n = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("answered once synced")
        .expect("task")
        .expect("listed");
    assert_eq!(n, 1);
}

/// The next item of an update stream, within a few seconds.
async fn next<T>(stream: &mut EventStream<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test]
async fn component_updates_stream_the_callers_namespace_with_secrets_resolved_once() {
    let api = FakeApi::new();
    api.secret("shop", "redis", &[("host", b"redis:6379")]);
    let operator = operator(&api).await;
    let op = &operator;
    let subscribe = || async move {
        op.component_update(Request::new(pb::ComponentUpdateRequest {
            namespace: "shop".into(),
        }))
        .await
        .expect("stream")
        .into_inner()
    };
    let (mut first, mut second) = (subscribe().await, subscribe().await);
    let reads_before = api.secret_reads();

    let with_ref = json!([{"name": "redisHost", "secretKeyRef": {"name": "redis", "key": "host"}}]);
    api.event(
        kinds::COMPONENT,
        "ADDED",
        component("other", "foreign", 2, json!([])),
    );
    api.event(
        kinds::COMPONENT,
        "ADDED",
        component("shop", "cache", 3, with_ref.clone()),
    );
    api.event(
        kinds::COMPONENT,
        "MODIFIED",
        component("shop", "cache", 4, with_ref.clone()),
    );
    api.event(
        kinds::COMPONENT,
        "DELETED",
        component("shop", "cache", 5, with_ref),
    );

    for stream in [&mut first, &mut second] {
        let created = next(stream).await;
        assert_eq!(
            created.r#type,
            pb::ResourceEventType::Created as i32,
            "the other namespace's component was skipped"
        );
        let c = json_of(&created.component);
        assert_eq!(c["metadata"]["name"], "cache");
        assert_eq!(c["spec"]["metadata"][0]["value"], b64(b"redis:6379"));
        let updated = next(stream).await;
        assert_eq!(updated.r#type, pb::ResourceEventType::Updated as i32);
        assert_eq!(
            json_of(&updated.component)["metadata"]["resourceVersion"],
            "4"
        );
        let deleted = next(stream).await;
        assert_eq!(deleted.r#type, pb::ResourceEventType::Deleted as i32);
        assert_eq!(name_of(&deleted.component), "cache");
    }
    assert_eq!(
        api.secret_reads() - reads_before,
        2,
        "one read per change (created, updated), shared by both streams; none for a deletion"
    );
}

#[tokio::test]
async fn every_kind_has_its_update_stream() {
    let api = FakeApi::new();
    let operator = operator(&api).await;
    let ns = || "shop".to_string();
    let mut configurations = operator
        .configuration_update(Request::new(pb::ConfigurationUpdateRequest {
            namespace: ns(),
        }))
        .await
        .expect("stream")
        .into_inner();
    let mut subscriptions = operator
        .subscription_update(Request::new(pb::SubscriptionUpdateRequest {
            namespace: ns(),
        }))
        .await
        .expect("stream")
        .into_inner();
    let mut resiliencies = operator
        .resiliency_update(Request::new(pb::ResiliencyUpdateRequest {
            namespace: ns(),
        }))
        .await
        .expect("stream")
        .into_inner();
    let mut endpoints = operator
        .http_endpoint_update(Request::new(pb::HttpEndpointUpdateRequest {
            namespace: ns(),
        }))
        .await
        .expect("stream")
        .into_inner();
    for kind in [
        kinds::CONFIGURATION,
        kinds::SUBSCRIPTION,
        kinds::RESILIENCY,
        kinds::HTTP_ENDPOINT,
    ] {
        api.event(kind, "ADDED", plain(kind, "other", "not-for-shop"));
        api.event(kind, "ADDED", plain(kind, "shop", &kind.plural[..4]));
    }
    let created = pb::ResourceEventType::Created as i32;
    let e = next(&mut configurations).await;
    assert_eq!(
        (e.r#type, name_of(&e.configuration)),
        (created, "conf".into())
    );
    let e = next(&mut subscriptions).await;
    assert_eq!(
        (e.r#type, name_of(&e.subscription)),
        (created, "subs".into())
    );
    let e = next(&mut resiliencies).await;
    assert_eq!((e.r#type, name_of(&e.resiliency)), (created, "resi".into()));
    let e = next(&mut endpoints).await;
    assert_eq!(
        (e.r#type, name_of(&e.http_endpoints)),
        (created, "http".into())
    );
}

#[tokio::test]
async fn under_mtls_a_call_without_a_client_certificate_is_unauthenticated() {
    let api = FakeApi::new();
    let operator = OperatorApi::new(caches(&api).await, api.client(), true);
    let err = operator
        .list_components(Request::new(pb::ListComponentsRequest {
            namespace: "shop".into(),
        }))
        .await
        .expect_err("no certificate");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = operator
        .list_subscriptions(Request::new(()))
        .await
        .expect_err("no certificate");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

/// An in-memory connection that tonic accepts as if it were TCP, so that over TLS the
/// API sees the same `TlsConnectInfo<TcpConnectInfo>` a real listener gives it.
struct Pipe(tokio::io::DuplexStream);

impl tonic::transport::server::Connected for Pipe {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: None,
        }
    }
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Serves `operator` over mTLS on in-memory pipes and returns a client that presents a
/// certificate for `caller` (trust domain `public`, namespace and app id as given).
fn serve_over_mtls(
    operator: OperatorApi,
    root: &Root,
    caller: Option<(&str, &str)>,
) -> pb::operator_client::OperatorClient<tonic::transport::Channel> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let issuer = root.issuer("operator-test-issuer");
    let own = issuer.workload("cp.example", "dapr-system", "dapr-operator");
    let server_cell = security::IdentityCell::new(
        own.certified_key(),
        security::SpiffeId::new("cp.example", "dapr-system", "dapr-operator"),
    );
    let server_tls = security::server_config(server_cell, root.root_store()).expect("server tls");
    let client_cell = caller.map(|(ns, app)| {
        let leaf = issuer.workload("public", ns, app);
        security::IdentityCell::new(
            leaf.certified_key(),
            security::SpiffeId::new("public", ns, app),
        )
    });
    let operator_id = security::SpiffeId::new("cp.example", "dapr-system", "dapr-operator");
    let client_tls =
        security::client_config(client_cell, root.root_store(), move |id| *id == operator_id);

    let (conns, incoming) =
        mpsc::channel::<std::io::Result<tokio_rustls::server::TlsStream<Pipe>>>(4);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::operator_server::OperatorServer::new(operator))
            .serve_with_incoming(ReceiverStream::new(incoming)),
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls);
    let connector = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        let (acceptor, conns) = (acceptor.clone(), conns.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(Pipe(server_end)).await {
                let _ = conns.send(Ok(tls)).await;
            }
        });
        let config = client_tls.clone();
        async move {
            let name = rustls::pki_types::ServerName::try_from("dapr.local").expect("name");
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, client_end)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("http://dapr.local")
        .connect_with_connector_lazy(connector);
    pb::operator_client::OperatorClient::new(channel)
}

#[tokio::test]
async fn under_mtls_a_sidecar_reads_only_the_namespace_in_its_certificate() {
    let api = FakeApi::new();
    api.set_list(
        kinds::COMPONENT,
        vec![
            component("shop", "mine", 1, json!([])),
            component("other", "theirs", 1, json!([])),
        ],
    );
    api.set_list(
        kinds::SUBSCRIPTION,
        vec![
            plain(kinds::SUBSCRIPTION, "shop", "orders"),
            plain(kinds::SUBSCRIPTION, "other", "audit"),
        ],
    );
    let operator = OperatorApi::new(caches(&api).await, api.client(), true);
    let root = Root::new("operator-test-root");
    let mut client = serve_over_mtls(operator, &root, Some(("shop", "reader")));

    for asked in ["", "shop"] {
        let own = client
            .list_components(pb::ListComponentsRequest {
                namespace: asked.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("asking for {asked:?}: {e}"))
            .into_inner()
            .components;
        assert_eq!(
            own.iter().map(|c| name_of(c)).collect::<Vec<_>>(),
            ["mine"],
            "asking for {asked:?}"
        );
    }
    let err = client
        .list_components(pb::ListComponentsRequest {
            namespace: "other".into(),
        })
        .await
        .expect_err("another namespace");
    assert_eq!(
        err.code(),
        tonic::Code::PermissionDenied,
        "{}",
        err.message()
    );
    assert!(
        err.message()
            .contains("spiffe://public/ns/shop/reader may not read namespace"),
        "{}",
        err.message()
    );
    let err = client
        .get_configuration(pb::GetConfigurationRequest {
            name: "any".into(),
            namespace: "other".into(),
        })
        .await
        .expect_err("another namespace");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    let subscriptions = client
        .list_subscriptions(())
        .await
        .expect("v1 subscriptions")
        .into_inner()
        .subscriptions;
    assert_eq!(
        subscriptions.iter().map(|s| name_of(s)).collect::<Vec<_>>(),
        ["orders"],
        "under mTLS even the pre-namespaced call is the caller's namespace only"
    );
}

#[tokio::test]
async fn under_mtls_a_client_without_a_certificate_gets_nothing() {
    let api = FakeApi::new();
    api.set_list(
        kinds::COMPONENT,
        vec![component("shop", "mine", 1, json!([]))],
    );
    let operator = OperatorApi::new(caches(&api).await, api.client(), true);
    let root = Root::new("operator-test-root");
    let mut client = serve_over_mtls(operator, &root, None);
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        client.list_components(pb::ListComponentsRequest {
            namespace: "shop".into(),
        }),
    )
    .await
    .expect("refused in time, not hung");
    assert!(refused.is_err(), "no client certificate, no components");
}
