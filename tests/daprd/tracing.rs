//! Tracing export as Dapr's Configuration asks for it (`spec.tracing`), checked in a real
//! collector: Jaeger, built from its Go module, receives the spans of real `daprd`
//! processes over OTLP gRPC, OTLP HTTP and Zipkin, and the tests read them back through
//! its query API: names, kinds, parents, attributes, one trace across two sidecars.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::http::HeaderMap;
use dapr::dapr::proto::common::v1::StateItem;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use dapr::dapr::proto::runtime::v1::{GetStateRequest, SaveStateRequest};
use serde_json::{Value, json};
use test_support::daprd::{Builder, daprd, resources};
use test_support::jaeger::{Jaeger, JaegerSpan};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace_id: &str, flags: &str) -> String {
    format!("00-{trace_id}-{PARENT_SPAN}-{flags}")
}

/// A fresh trace id per request, so tests sharing a collector never see each other's spans.
fn new_trace_id() -> String {
    format!("{:016x}{:016x}", rand_u64(), rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// Writes a Configuration with `tracing` (YAML, indented under `spec:`) and, for
/// invocation tests, name resolution on a file private to `dir`.
fn config(dir: &Path, tracing: &str) -> String {
    let path = dir.join("tracing.yaml");
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: tracing\nspec:\n  nameResolution:\n    component: sqlite\n    configuration:\n      connectionString: \"{}\"\n      updateInterval: 1s\n  tracing:\n{tracing}",
        dir.join("hosts.db").display()
    );
    std::fs::write(&path, yaml).expect("write config");
    path.display().to_string()
}

fn otel(protocol: &str, port: u16) -> String {
    format!(
        "    samplingRate: \"1\"\n    otel:\n      protocol: {protocol}\n      endpointAddress: \"127.0.0.1:{port}\"\n      isSecure: false\n"
    )
}

/// Spans leave the sidecar every 100 ms instead of Go's 5 s.
fn traced(builder: Builder, cfg: &str) -> Builder {
    builder
        .arg("--config")
        .arg(cfg)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
}

/// An app that answers with the trace headers it received.
async fn start_app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let addr = listener.local_addr().expect("addr");
    let echo = |headers: HeaderMap| async move {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        json!({
            "traceparent": h("traceparent"),
            "tracestate": h("tracestate"),
            "baggage": h("baggage"),
        })
        .to_string()
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().fallback(echo)).await;
    });
    addr
}

fn find<'a>(spans: &'a [JaegerSpan], service: &str) -> &'a JaegerSpan {
    spans
        .iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("no span of {service} in {spans:#?}"))
}

fn trace_id_of(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn an_invocation_is_one_trace_across_both_sidecars_over_otlp_grpc() {
    let jaeger = Jaeger::start().await;
    let app = start_app().await;
    let dir = resources(&[]);
    let cfg = config(dir.path(), &otel("grpc", jaeger.otlp_grpc));
    let _callee = traced(daprd().app_id("callee"), &cfg)
        .arg("--app-port")
        .arg(app.port().to_string())
        .start()
        .await;
    let caller = traced(daprd().app_id("caller"), &cfg).start().await;
    let c = reqwest::Client::new();

    // A caller that is itself traced: the sidecars' spans join its trace.
    let r = c
        .post(caller.url("/v1.0/invoke/callee/method/orders"))
        .header("traceparent", traceparent(TRACE_ID, "01"))
        .header("tracestate", "vendor=x")
        .body("{}")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    let answered = r.headers()["traceparent"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(trace_id_of(&answered), TRACE_ID, "{answered}");
    let got: Value = r.json().await.expect("json");
    assert_eq!(
        got["traceparent"],
        traceparent(TRACE_ID, "01"),
        "the caller's own traceparent reaches the app, as Dapr passes it on"
    );
    assert_eq!(got["tracestate"], "vendor=x");

    let spans = jaeger.wait_for(TRACE_ID, 2).await;
    let out = find(&spans, "caller");
    let into = find(&spans, "callee");
    assert_eq!(out.name, "CallLocal/callee/orders");
    assert_eq!(out.parent.as_deref(), Some(PARENT_SPAN));
    assert_eq!(out.tag("span.kind"), Some("client"));
    assert_eq!(out.tag("dapr.protocol"), Some("http"));
    assert_eq!(
        out.tag("dapr.api"),
        Some("POST /v1.0/invoke/callee/method/orders")
    );
    assert_eq!(out.tag("dapr.status_code"), Some("200"));
    assert_eq!(out.tag("rpc.service"), Some("ServiceInvocation"));
    assert_eq!(out.tag("net.peer.name"), Some("callee"));
    assert_eq!(out.tag("http.request.method"), Some("POST"));
    assert_eq!(out.tag("server.address"), Some("127.0.0.1"));
    assert_eq!(answered.split('-').nth(2), Some(out.span_id.as_str()));

    assert_eq!(into.name, "CallLocal/callee/orders");
    assert_eq!(
        into.parent.as_deref(),
        Some(out.span_id.as_str()),
        "the callee's span is a child of the caller's"
    );
    assert_eq!(into.tag("span.kind"), Some("server"));
    assert_eq!(into.tag("dapr.protocol"), Some("grpc"));
    assert!(
        into.tag("dapr.api")
            .is_some_and(|a| a.starts_with("/dapr.proto.internals.v1.ServiceInvocation/CallLocal")),
        "{into:?}"
    );
    assert_eq!(into.tag("dapr.invoke_method"), Some("orders"));

    // A caller without trace context starts a trace at the caller's sidecar, and the app
    // gets the callee sidecar's span as its parent.
    let r = c
        .get(caller.url("/v1.0/invoke/callee/method/fresh"))
        .send()
        .await
        .expect("invoke");
    let answered = r.headers()["traceparent"]
        .to_str()
        .expect("ascii")
        .to_string();
    let got: Value = r.json().await.expect("json");
    let seen = got["traceparent"].as_str().unwrap_or_default().to_string();
    let trace_id = trace_id_of(&answered).to_string();
    assert_eq!(
        trace_id_of(&seen),
        trace_id,
        "app {seen} vs caller {answered}"
    );
    let spans = jaeger.wait_for(&trace_id, 2).await;
    let out = find(&spans, "caller");
    let into = find(&spans, "callee");
    assert_eq!(out.parent, None, "a new trace: {out:?}");
    assert_eq!(into.parent.as_deref(), Some(out.span_id.as_str()));
    assert_eq!(
        seen.split('-').nth(2),
        Some(into.span_id.as_str()),
        "the app's parent is the callee sidecar's span"
    );
}

#[tokio::test]
async fn a_proxied_grpc_call_is_one_trace_across_both_sidecars() {
    let jaeger = Jaeger::start().await;
    let (_reporter, port) = test_support::apps::grpc_health_app("orders").await;
    let dir = resources(&[]);
    let cfg = config(dir.path(), &otel("grpc", jaeger.otlp_grpc));
    let _callee = traced(daprd().app_id("grpc-callee"), &cfg)
        .args(["--app-port", &port.to_string(), "--app-protocol", "grpc"])
        .start()
        .await;
    let caller = traced(daprd().app_id("grpc-caller"), &cfg).start().await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", caller.grpc))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let trace_id = new_trace_id();
    let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: "orders".into(),
    });
    req.metadata_mut()
        .insert("dapr-app-id", "grpc-callee".parse().expect("ascii"));
    req.metadata_mut().insert(
        "traceparent",
        traceparent(&trace_id, "01").parse().expect("ascii"),
    );
    client.check(req).await.expect("proxied check");

    // A stream's span lasts as long as the stream.
    let stream_trace = new_trace_id();
    let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: "orders".into(),
    });
    req.metadata_mut()
        .insert("dapr-app-id", "grpc-callee".parse().expect("ascii"));
    req.metadata_mut().insert(
        "traceparent",
        traceparent(&stream_trace, "01").parse().expect("ascii"),
    );
    let mut watch = client.watch(req).await.expect("watch").into_inner();
    watch
        .message()
        .await
        .expect("first status")
        .expect("a status");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(watch);
    let streamed = jaeger.wait_for(&stream_trace, 2).await;
    let out = find(&streamed, "grpc-caller");
    assert_eq!(out.name, "/grpc.health.v1.Health/Watch");
    assert!(
        out.duration_us >= 450_000,
        "the span ended with the stream, not its first message: {out:?}"
    );

    let spans = jaeger.wait_for(&trace_id, 2).await;
    let out = find(&spans, "grpc-caller");
    let into = find(&spans, "grpc-callee");
    assert_eq!(out.name, "/grpc.health.v1.Health/Check");
    assert_eq!(out.tag("span.kind"), Some("client"));
    assert_eq!(out.parent.as_deref(), Some(PARENT_SPAN));
    assert_eq!(into.name, "/grpc.health.v1.Health/Check");
    assert_eq!(
        into.tag("span.kind"),
        Some("server"),
        "the callee is this app"
    );
    assert_eq!(
        into.parent.as_deref(),
        Some(out.span_id.as_str()),
        "the callee's span is a child of the caller's"
    );
}

#[tokio::test]
async fn state_calls_over_grpc_are_exported_over_otlp_http() {
    let jaeger = Jaeger::start().await;
    let dir = resources(&[]);
    let cfg = config(dir.path(), &otel("http", jaeger.otlp_http));
    let d = traced(daprd().app_id("stateful"), &cfg).start().await;
    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");

    let trace_id = new_trace_id();
    let mut req = tonic::Request::new(SaveStateRequest {
        store_name: "statestore".into(),
        states: vec![StateItem {
            key: "k".into(),
            value: b"v".to_vec(),
            ..Default::default()
        }],
    });
    req.metadata_mut().insert(
        "traceparent",
        traceparent(&trace_id, "01").parse().expect("ascii"),
    );
    req.metadata_mut()
        .insert("dapr-custom", "tagged".parse().expect("ascii"));
    let resp = grpc.save_state(req).await.expect("save");
    let bin = resp
        .metadata()
        .get_bin("grpc-trace-bin")
        .and_then(|v| v.to_bytes().ok())
        .expect("the answer carries grpc-trace-bin");
    assert_eq!(bin.len(), 29);
    assert_eq!(
        trace::context::hex(&bin[2..18]),
        trace_id,
        "the answer's context is in the caller's trace"
    );

    // A failing call: its span is marked failed with the gRPC message.
    let mut req = tonic::Request::new(GetStateRequest {
        store_name: "nope".into(),
        key: "k".into(),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "traceparent",
        traceparent(&trace_id, "01").parse().expect("ascii"),
    );
    let err = grpc.get_state(req).await.expect_err("unknown store");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let spans = jaeger.wait_for(&trace_id, 2).await;
    let save = spans
        .iter()
        .find(|s| s.name == "/dapr.proto.runtime.v1.Dapr/SaveState")
        .unwrap_or_else(|| panic!("no SaveState span in {spans:#?}"));
    assert_eq!(save.service, "stateful");
    assert_eq!(save.parent.as_deref(), Some(PARENT_SPAN));
    assert_eq!(save.tag("span.kind"), Some("client"));
    assert_eq!(save.tag("dapr.protocol"), Some("grpc"));
    assert_eq!(
        save.tag("dapr.api"),
        Some("/dapr.proto.runtime.v1.Dapr/SaveState")
    );
    assert_eq!(save.tag("db.system"), Some("state"));
    assert_eq!(save.tag("db.name"), Some("statestore"));
    assert_eq!(
        save.tag("db.statement"),
        Some("/dapr.proto.runtime.v1.Dapr/SaveState")
    );
    assert_eq!(save.tag("rpc.service"), Some("Dapr"));
    assert_eq!(save.tag("dapr-custom"), Some("tagged"));
    assert_eq!(save.tag("error"), None);
    let get = spans
        .iter()
        .find(|s| s.name == "/dapr.proto.runtime.v1.Dapr/GetState")
        .unwrap_or_else(|| panic!("no GetState span in {spans:#?}"));
    assert_eq!(get.tag("db.name"), Some("nope"));
    assert_eq!(get.tag("error"), Some("true"));
    assert_eq!(get.tag("otel.status_description"), Some(err.message()));
}

#[tokio::test]
async fn zipkin_and_stdout_exporters() {
    let jaeger = Jaeger::start().await;
    let dir = resources(&[]);
    let cfg = config(
        dir.path(),
        &format!(
            "    samplingRate: \"1\"\n    stdout: true\n    zipkin:\n      endpointAddress: \"http://127.0.0.1:{}/api/v2/spans\"\n",
            jaeger.zipkin
        ),
    );
    let d = traced(daprd().app_id("zipped"), &cfg).start().await;
    let trace_id = new_trace_id();
    let r = reqwest::Client::new()
        .get(d.url("/v1.0/state/statestore/missing-key"))
        .header("traceparent", traceparent(&trace_id, "01"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 204);
    let r = reqwest::Client::new()
        .get(d.url("/v1.0/state/nope/k"))
        .header("traceparent", traceparent(&trace_id, "01"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400);

    let spans = jaeger.wait_for(&trace_id, 2).await;
    let ok = spans
        .iter()
        .find(|s| s.name == "/v1.0/state/statestore/missing-key")
        .unwrap_or_else(|| panic!("no span of the good call in {spans:#?}"));
    assert_eq!(ok.service, "zipped");
    assert_eq!(ok.parent.as_deref(), Some(PARENT_SPAN));
    assert_eq!(ok.tag("span.kind"), Some("client"));
    assert_eq!(ok.tag("db.system"), Some("state"));
    assert_eq!(ok.tag("db.name"), Some("statestore"));
    assert_eq!(
        ok.tag("db.statement"),
        Some("GET /v1.0/state/statestore/missing-key")
    );
    assert_eq!(ok.tag("dapr.status_code"), Some("204"));
    let bad = spans
        .iter()
        .find(|s| s.name == "/v1.0/state/nope/k")
        .unwrap_or_else(|| panic!("no span of the failed call in {spans:#?}"));
    assert_eq!(bad.tag("dapr.status_code"), Some("400"));
    assert_eq!(bad.tag("error"), Some("true"));

    // The same spans, one line each, in the sidecar's log.
    let log = d.log();
    assert!(
        log.contains(&format!(
            "[/v1.0/state/statestore/missing-key] Trace: {trace_id} Span: {PARENT_SPAN}/{}",
            ok.span_id
        )),
        "{log}"
    );
}

#[tokio::test]
async fn a_zero_rate_starts_no_trace_but_follows_a_sampled_caller() {
    let jaeger = Jaeger::start().await;
    let dir = resources(&[]);
    let cfg = config(
        dir.path(),
        &otel("grpc", jaeger.otlp_grpc).replace("samplingRate: \"1\"", "samplingRate: \"0\""),
    );
    let d = traced(daprd().app_id("quiet"), &cfg).start().await;
    let c = reqwest::Client::new();

    // No caller context: a new trace, not sampled, its context still handed back.
    let r = c
        .get(d.url("/v1.0/state/statestore/a"))
        .send()
        .await
        .expect("get");
    let answered = r.headers()["traceparent"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(answered.ends_with("-00"), "not sampled: {answered}");
    let unsampled = trace_id_of(&answered).to_string();
    // A caller that did not sample its trace: neither does the sidecar.
    let dropped = new_trace_id();
    let r = c
        .get(d.url("/v1.0/state/statestore/b"))
        .header("traceparent", traceparent(&dropped, "00"))
        .send()
        .await
        .expect("get");
    assert!(
        r.headers()["traceparent"]
            .to_str()
            .is_ok_and(|t| t.starts_with(&format!("00-{dropped}-")) && t.ends_with("-00"))
    );
    // A caller that sampled its trace: the sidecar's span is exported, whatever its rate.
    let sampled = new_trace_id();
    c.get(d.url("/v1.0/state/statestore/c"))
        .header("traceparent", traceparent(&sampled, "01"))
        .send()
        .await
        .expect("get");
    let spans = jaeger.wait_for(&sampled, 1).await;
    assert_eq!(spans[0].name, "/v1.0/state/statestore/c");
    // The sampled span was sent after the other two, so they would be there by now.
    assert!(jaeger.trace(&unsampled).await.is_empty());
    assert!(jaeger.trace(&dropped).await.is_empty());
}

#[tokio::test]
async fn the_otel_environment_configures_the_exporter() {
    let jaeger = Jaeger::start().await;
    let d = daprd()
        .app_id("from-env")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://127.0.0.1:{}", jaeger.otlp_grpc),
        )
        .env("OTEL_EXPORTER_OTLP_INSECURE", "true")
        .env("OTEL_SERVICE_NAME", "renamed-by-env")
        .start()
        .await;
    let trace_id = new_trace_id();
    reqwest::Client::new()
        .get(d.url("/v1.0/metadata"))
        .header("traceparent", traceparent(&trace_id, "01"))
        .send()
        .await
        .expect("metadata");
    let spans = jaeger.wait_for(&trace_id, 1).await;
    assert_eq!(spans[0].name, "/v1.0/metadata");
    assert_eq!(spans[0].service, "renamed-by-env");
    assert_eq!(spans[0].tag("dapr.api"), Some("GET /v1.0/metadata"));
}

#[tokio::test]
async fn baggage_is_checked_and_passed_on() {
    let app = start_app().await;
    let d = daprd()
        .arg("--app-port")
        .arg(app.port().to_string())
        .start()
        .await;
    let c = reqwest::Client::new();
    let url = d.url(&format!("/v1.0/invoke/{}/method/bag", d.app_id));

    let r = c
        .get(&url)
        .header("baggage", "userId=alice,serverNode=DF%2028")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["baggage"], "userId=alice,serverNode=DF%2028");
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["baggage"], "userId=alice,serverNode=DF%2028");

    let r = c
        .get(&url)
        .header("baggage", "no-value-here")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.expect("text"),
        "invalid baggage header: invalid baggage list-member: \"no-value-here\"\n"
    );

    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");
    let mut req = tonic::Request::new(GetStateRequest {
        store_name: "statestore".into(),
        key: "k".into(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("baggage", "userId=bob".parse().expect("ascii"));
    let resp = grpc.get_state(req).await.expect("get");
    assert_eq!(
        resp.metadata().get("baggage").and_then(|v| v.to_str().ok()),
        Some("userId=bob"),
        "a good baggage comes back"
    );

    let mut req = tonic::Request::new(GetStateRequest {
        store_name: "statestore".into(),
        key: "k".into(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("baggage", "bad key=1".parse().expect("ascii"));
    let err = grpc.get_state(req).await.expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "invalid baggage header: invalid baggage key: \"bad key\""
    );
}
