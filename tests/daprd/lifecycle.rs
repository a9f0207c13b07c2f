//! Process lifecycle of the real `daprd`: version, readiness, the init log line,
//! graceful shutdown on SIGTERM and on `POST /v1.0/shutdown`, the public port.

use std::process::Command;
use std::time::Duration;

use test_support::daprd::daprd;
use test_support::free_port;

/// `--mode` and `--app-protocol` are strings to Dapr's flag parser, refused once the
/// runtime reads them: a bad value is a fatal start (status 1) with Dapr's message, not
/// a usage error (status 2).
#[test]
fn a_bad_mode_or_app_protocol_fails_the_start_with_status_1() {
    for (flag, value) in [("--app-protocol", "ftp"), ("--mode", "cloud")] {
        let out = Command::new(test_support::binary("daprd"))
            .args(["--app-id", "a", flag, value])
            .output()
            .expect("run daprd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {stderr}");
        let expected = format!("invalid value for '{}': {value}", &flag[2..]);
        assert!(stderr.contains(&expected), "{flag} {value}: {stderr}");
    }
}

#[test]
fn version_is_bare_semver() {
    let out = Command::new(test_support::binary("daprd"))
        .arg("--version")
        .output()
        .expect("run daprd");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    let v = text.trim_end();
    assert_eq!(text, format!("{v}\n"));
    let parts: Vec<&str> = v.split('.').collect();
    assert_eq!(parts.len(), 3, "{v}");
    assert!(
        parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())),
        "{v}"
    );
}

#[test]
fn bad_flags_and_missing_app_id_are_refused() {
    let bin = test_support::binary("daprd");
    let out = Command::new(&bin)
        .args(["--app-id", "a", "--not-a-flag"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = Command::new(&bin)
        .args(["--dapr-http-port", &free_port().to_string()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("app-id cannot be empty"));
}

#[tokio::test]
async fn embedded_default_logs_ready_and_stops_on_sigterm() {
    let mut d = daprd().start().await;
    let log = d.log();
    assert!(
        log.contains("dapr initialized. Status: Running. Init Elapsed"),
        "{log}"
    );
    let client = reqwest::Client::new();
    let r = client
        .get(d.url("/v1.0/healthz/outbound"))
        .send()
        .await
        .expect("outbound");
    assert_eq!(r.status(), 204);
    let r = client
        .get(d.url(&format!("/v1.0/healthz?appid={}", d.app_id)))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 204);
    let r = client
        .get(d.url("/v1.0/healthz?appid=other"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_HEALTH_APPID_NOT_MATCH");

    // The embedded in-memory store works at once.
    let r = client
        .post(d.url("/v1.0/state/statestore"))
        .body(r#"[{"key":"k","value":"v"}]"#)
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 204);
    let r = client
        .get(d.url("/v1.0/state/statestore/k"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.text().await.expect("body"), "\"v\"");

    d.sigterm();
    let status = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}; log:\n{}", d.log());
    assert!(d.log().contains("Dapr runtime stopped"));
}

#[tokio::test]
async fn shutdown_api_stops_the_process() {
    let mut d = daprd().start().await;
    let r = reqwest::Client::new()
        .post(d.url("/v1.0/shutdown"))
        .send()
        .await
        .expect("shutdown");
    assert_eq!(r.status(), 204);
    let status = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}");
}

/// An app whose `/hang` never answers, so a graceful shutdown would wait for it.
async fn hanging_app() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().route(
        "/hang",
        axum::routing::get(std::future::pending::<&'static str>),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// `dapr-force-shutdown: true` skips the graceful part: the process exits at once with
/// status 1 although a call is in flight and the grace period is long.
#[tokio::test]
async fn forced_shutdown_exits_at_once_with_status_1() {
    use dapr::dapr::proto::runtime::v1::{ShutdownRequest, dapr_client::DaprClient};
    for via in ["http", "grpc"] {
        let app = hanging_app().await;
        let mut d = daprd()
            .args(["--app-port", &app.to_string()])
            .args(["--dapr-graceful-shutdown-seconds", "20"])
            .start()
            .await;
        let hang = tokio::spawn(reqwest::get(
            d.url(&format!("/v1.0/invoke/{}/method/hang", d.app_id)),
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked = std::time::Instant::now();
        if via == "http" {
            // The 204 may or may not beat the exit; the exit is what counts.
            let _ = reqwest::Client::new()
                .post(d.url("/v1.0/shutdown"))
                .header("dapr-force-shutdown", "true")
                .send()
                .await;
        } else {
            let mut client = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
                .await
                .expect("connect");
            let mut req = tonic::Request::new(ShutdownRequest {});
            req.metadata_mut()
                .insert("dapr-force-shutdown", "true".parse().expect("value"));
            let _ = client.shutdown(req).await;
        }
        let status = d.wait_exit(Duration::from_secs(5)).await;
        assert_eq!(status.code(), Some(1), "via {via}: exit {status}");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "via {via}: exited after {:?}",
            asked.elapsed()
        );
        hang.abort();
    }
}

#[tokio::test]
async fn grpc_shutdown_stops_the_process() {
    use dapr::dapr::proto::runtime::v1::{ShutdownRequest, dapr_client::DaprClient};
    let mut d = daprd().start().await;
    let mut client = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");
    client
        .shutdown(ShutdownRequest {})
        .await
        .expect("shutdown rpc");
    let status = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}");
}

#[tokio::test]
async fn public_port_serves_health_and_metadata_only() {
    let public = free_port();
    let d = daprd()
        .arg("--dapr-public-port")
        .arg(public.to_string())
        .arg("--dapr-public-listen-address")
        .arg("127.0.0.1")
        .env("DAPR_API_TOKEN", "secret")
        .start()
        .await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{public}");
    let r = client
        .get(format!("{base}/v1.0/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 204);
    let r = client
        .get(format!("{base}/v1.0/metadata"))
        .send()
        .await
        .expect("metadata");
    assert_eq!(r.status(), 200, "public metadata needs no token");
    let meta: serde_json::Value = r.json().await.expect("json");
    assert_eq!(meta["id"], d.app_id.as_str());
    let r = client
        .get(format!("{base}/v1.0/state/statestore/k"))
        .send()
        .await
        .expect("state");
    assert_eq!(r.status(), 404, "the public port serves no building blocks");
}

#[tokio::test]
async fn unknown_routes_fall_through_to_invocation_errors() {
    let d = daprd().start().await;
    let r = reqwest::Client::new()
        .get(d.url("/v1.0/nothing/here"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
}

#[tokio::test]
async fn metrics_count_requests_with_daprs_names() {
    let d = daprd().start().await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        client
            .get(d.url("/v1.0/state/nostore/missing"))
            .send()
            .await
            .expect("get");
    }
    use dapr::dapr::proto::runtime::v1::{GetStateRequest, dapr_client::DaprClient};
    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", d.grpc))
        .await
        .expect("connect");
    let req = GetStateRequest {
        store_name: "nope".into(),
        key: "k".into(),
        ..Default::default()
    };
    grpc.get_state(req).await.expect_err("unknown store");
    let text = client
        .get(format!("http://127.0.0.1:{}/metrics", d.metrics))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let app = &d.app_id;
    assert!(
        text.contains(&format!(
            r#"dapr_http_server_request_count{{app_id="{app}",method="GET",path="/v1.0/state/nostore",status="400"}} 3"#
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        r#"dapr_grpc_io_server_completed_rpcs{{app_id="{app}",grpc_server_method="/dapr.proto.runtime.v1.Dapr/GetState",grpc_server_status="InvalidArgument"}} 1"#
    )), "{text}");
    // The embedded defaults: the in-memory state store and pub/sub.
    assert!(
        text.contains(&format!(
            r#"dapr_runtime_component_loaded{{app_id="{app}"}} 2"#
        )),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_be_disabled() {
    let enabled = daprd().start().await;
    assert!(enabled.log().contains("metrics server listening"));
    let d = daprd().arg("--enable-metrics=false").start().await;
    let r = reqwest::get(format!("http://127.0.0.1:{}/metrics", d.metrics)).await;
    assert!(r.is_err(), "nothing listens on the metrics port");
    assert!(!d.log().contains("metrics server listening"), "{}", d.log());
}

#[tokio::test]
async fn json_logs_have_daprs_fields() {
    let d = daprd().arg("--log-as-json").start().await;
    let log = d.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        for field in [
            "time", "level", "type", "msg", "scope", "instance", "app_id", "ver",
        ] {
            assert!(line.get(field).is_some(), "missing {field}: {line}");
        }
        assert_eq!(line["type"], "log");
        assert_eq!(line["app_id"], d.app_id.as_str());
        assert!(line["time"].as_str().unwrap_or("").ends_with('Z'), "{line}");
    }
    assert!(lines.iter().any(|l| {
        l["level"] == "info"
            && l["msg"]
                .as_str()
                .unwrap_or("")
                .starts_with("dapr initialized. Status: Running.")
    }));
}
