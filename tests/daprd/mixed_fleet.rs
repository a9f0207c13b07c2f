//! A mixed fleet: one of our `daprd`s and one of Dapr's own (built from the Go module
//! `github.com/dapr/dapr` by `tests/mixed/build-dapr-daprd.sh`, found through
//! `DAPR_DAPRD_BIN`), started with the same flags, sharing one `nameresolution.sqlite`
//! file, each in front of its own HTTP app. Invocation goes both ways over Dapr's
//! internal gRPC API, in plain text and under mTLS with certificates from our Sentry.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};
use test_support::certs::Root;
use test_support::{Process, free_port};

fn theirs() -> PathBuf {
    PathBuf::from(std::env::var_os("DAPR_DAPRD_BIN").unwrap_or_else(|| {
        panic!("DAPR_DAPRD_BIN is not set: build Dapr's daprd with tests/mixed/build-dapr-daprd.sh and export its path")
    }))
}

/// An app that says who it is and what it got.
async fn start_app(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let addr = listener.local_addr().expect("addr");
    let echo = move |method: Method, uri: Uri, headers: HeaderMap, body: String| async move {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        json!({
            "app": name,
            "method": method.as_str(),
            "uri": uri.to_string(),
            "body": body,
            "caller": h("dapr-caller-app-id"),
            "callee": h("dapr-callee-app-id"),
            "custom": h("x-custom"),
        })
        .to_string()
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().fallback(echo)).await;
    });
    addr
}

struct Sidecar {
    process: Process,
    http: u16,
}

/// Our Sentry with a root of the test's own; its trust anchors go to both sidecars.
struct Mtls {
    _sentry: test_support::sentry::Sentry,
    port: u16,
    ca: String,
    _dir: tempfile::TempDir,
}

async fn start_sentry() -> Mtls {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = Root::new("mixed-fleet-root");
    let dir = tempfile::tempdir().expect("dir");
    let creds = dir.path().join("creds");
    root.issuer("issuer").write_credentials(&creds);
    let sentry = test_support::sentry::start(&creds, None, &[]).await;
    Mtls {
        port: sentry.port,
        _sentry: sentry,
        ca: root.pem(),
        _dir: dir,
    }
}

/// Starts `bin` (ours or theirs) with the flags Dapr's CLI would give it.
async fn start(
    bin: &Path,
    app_id: &str,
    app: SocketAddr,
    config: &Path,
    mtls: Option<&Mtls>,
) -> Sidecar {
    for _ in 0..4 {
        if let Some(sidecar) = try_start(bin, app_id, app, config, mtls).await {
            return sidecar;
        }
    }
    panic!("{app_id} could not find free ports in four tries");
}

/// One start; `None` when a port was taken under it.
async fn try_start(
    bin: &Path,
    app_id: &str,
    app: SocketAddr,
    config: &Path,
    mtls: Option<&Mtls>,
) -> Option<Sidecar> {
    let (http, grpc, internal, metrics) = (free_port(), free_port(), free_port(), free_port());
    let mut args: Vec<String> = [
        "--app-id",
        app_id,
        "--app-port",
        &app.port().to_string(),
        "--dapr-http-port",
        &http.to_string(),
        "--dapr-grpc-port",
        &grpc.to_string(),
        "--dapr-internal-grpc-port",
        &internal.to_string(),
        "--metrics-port",
        &metrics.to_string(),
        "--dapr-listen-addresses",
        "127.0.0.1",
        "--config",
        &config.display().to_string(),
        "--log-level",
        "debug",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Spans leave every 100 ms (both Go's SDK and ours read this).
    let mut env: Vec<(&str, &str)> = vec![("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let sentry_address;
    if let Some(m) = mtls {
        sentry_address = format!("127.0.0.1:{}", m.port);
        args.extend(
            [
                "--enable-mtls",
                "--sentry-address",
                &sentry_address,
                "--control-plane-trust-domain",
                test_support::sentry::TRUST_DOMAIN,
                "--control-plane-namespace",
                "dapr-system",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        env.push(("DAPR_TRUST_ANCHORS", m.ca.as_str()));
    }
    let mut process = Process::spawn(bin, &args, &env);
    let url = format!("http://127.0.0.1:{http}/v1.0/healthz");
    if !process
        .answers_unless_port_lost(&url, 204, Duration::from_secs(60))
        .await
    {
        return None;
    }
    Some(Sidecar { process, http })
}

/// Dapr's resolver wants `updateInterval` at least 1 s above its 1 s `timeout`.
fn config(dir: &Path) -> PathBuf {
    config_with(dir, "")
}

/// The shared Configuration, with more of `spec` (indented YAML) after name resolution.
fn config_with(dir: &Path, more_spec: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: mixed\nspec:\n  nameResolution:\n    component: sqlite\n    version: v1\n    configuration:\n      connectionString: \"{}\"\n      updateInterval: 2s\n{more_spec}",
            dir.join("hosts.db").display()
        ),
    )
    .expect("config");
    path
}

/// Invokes `target` through `from`, retrying while the callee is not yet registered.
async fn invoke(from: &Sidecar, target: &str, logs: &[&Sidecar]) -> Value {
    let c = reqwest::Client::new();
    let url = format!(
        "http://127.0.0.1:{}/v1.0/invoke/{target}/method/orders/7?x=1",
        from.http
    );
    let mut last = String::new();
    for _ in 0..100 {
        let r = c
            .post(&url)
            .header("x-custom", "hello")
            .body("payload")
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => return r.json().await.expect("json"),
            Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs: Vec<String> = logs.iter().map(|s| s.process.log()).collect();
    panic!("invoking {target}: {last}\n{}", logs.join("\n-----\n"));
}

fn assert_reached(got: &Value, app: &str, caller: &str, callee: &str) {
    assert_eq!(got["app"], app, "{got}");
    assert_eq!(got["method"], "POST");
    assert_eq!(got["uri"], "/orders/7?x=1");
    assert_eq!(got["body"], "payload");
    assert_eq!(got["caller"], caller);
    assert_eq!(got["callee"], callee);
    assert_eq!(got["custom"], "hello");
}

async fn both_ways(mtls: Option<&Mtls>) {
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(dir.path());
    let (our_app, their_app) = (start_app("ours-app").await, start_app("theirs-app").await);
    // Ours first: Dapr's sidecar then finds the name-resolution file already set up.
    let ours = start(&test_support::binary("daprd"), "ours", our_app, &cfg, mtls).await;
    let theirs = start(&theirs(), "theirs", their_app, &cfg, mtls).await;
    let logs = [&ours, &theirs];

    let got = invoke(&ours, "theirs", &logs).await;
    assert_reached(&got, "theirs-app", "ours", "theirs");
    let got = invoke(&theirs, "ours", &logs).await;
    assert_reached(&got, "ours-app", "theirs", "ours");
    // Dapr's sidecar says when it goes without a certificate.
    assert_eq!(
        theirs.process.log().contains("mTLS is disabled"),
        mtls.is_none(),
        "{}",
        theirs.process.log()
    );
}

#[tokio::test]
async fn invocation_both_ways_between_our_sidecar_and_dapr_s() {
    both_ways(None).await;
}

#[tokio::test]
async fn invocation_both_ways_under_mtls_from_our_sentry() {
    let mtls = start_sentry().await;
    both_ways(Some(&mtls)).await;
}

fn span_of<'a>(
    spans: &'a [test_support::jaeger::JaegerSpan],
    service: &str,
) -> &'a test_support::jaeger::JaegerSpan {
    spans
        .iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("no span of {service} in {spans:#?}"))
}

#[tokio::test]
async fn one_trace_spans_our_sidecar_and_dapr_s() {
    let jaeger = test_support::jaeger::Jaeger::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config_with(
        dir.path(),
        &format!(
            "  tracing:\n    samplingRate: \"1\"\n    otel:\n      protocol: grpc\n      endpointAddress: \"127.0.0.1:{}\"\n      isSecure: false\n",
            jaeger.otlp_grpc
        ),
    );
    let (our_app, their_app) = (start_app("ours-app").await, start_app("theirs-app").await);
    let ours = start(&test_support::binary("daprd"), "ours", our_app, &cfg, None).await;
    let theirs = start(&theirs(), "theirs", their_app, &cfg, None).await;
    let logs = [&ours, &theirs];
    // Both are registered once one call each way has gone through.
    invoke(&ours, "theirs", &logs).await;
    invoke(&theirs, "ours", &logs).await;

    let c = reqwest::Client::new();
    for (from, to, trace_id) in [
        (&ours, "theirs", "0af7651916cd43dd8448eb211c80319c"),
        (&theirs, "ours", "1bf7651916cd43dd8448eb211c80319d"),
    ] {
        let r = c
            .post(format!(
                "http://127.0.0.1:{}/v1.0/invoke/{to}/method/traced",
                from.http
            ))
            .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
            .body("x")
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status(), 200);
        let spans = jaeger.wait_for(trace_id, 2).await;
        let caller = if to == "theirs" { "ours" } else { "theirs" };
        let out = span_of(&spans, caller);
        let into = span_of(&spans, to);
        assert_eq!(out.name, format!("CallLocal/{to}/traced"), "{spans:#?}");
        assert_eq!(into.name, format!("CallLocal/{to}/traced"), "{spans:#?}");
        assert_eq!(out.parent.as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(
            into.parent.as_deref(),
            Some(out.span_id.as_str()),
            "{to}'s span continues {caller}'s: {spans:#?}"
        );
        assert_eq!(out.tag("span.kind"), Some("client"));
        assert_eq!(into.tag("span.kind"), Some("server"));
    }
}
