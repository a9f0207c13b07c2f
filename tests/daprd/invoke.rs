//! Service invocation between two real `daprd` processes: the caller has no app, the callee
//! fronts an HTTP app running in this test. Name resolution is `nameresolution.sqlite` on a
//! file private to the test, selected through a Configuration as a user would.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use test_support::daprd::{daprd, resources};

/// An app that echoes what it received; `x-status` picks the status it answers with.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = h("x-status").and_then(|s| s.parse().ok()).unwrap_or(200);
    let out = json!({
        "method": method.as_str(),
        "uri": uri.to_string(),
        "body": String::from_utf8_lossy(&body),
        "caller": h("dapr-caller-app-id"),
        "callee": h("dapr-callee-app-id"),
        "custom": h("x-custom"),
        "token": h("dapr-api-token"),
        "traceparent": h("traceparent"),
        "tracestate": h("tracestate"),
        "authorization": h("authorization"),
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [("x-from-app", "yes")],
        out.to_string(),
    )
}

async fn start_app() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().fallback(echo)).await;
    });
    addr
}

#[tokio::test]
async fn http_invocation_between_two_sidecars() {
    let app = start_app().await;
    let dir = resources(&[]);
    let cfg = test_support::daprd::resolution_config(dir.path());
    let callee = daprd()
        .app_id("callee")
        .arg("--app-port")
        .arg(app.port().to_string())
        .arg("--config")
        .arg(cfg.clone())
        .env("APP_API_TOKEN", "app-secret")
        .start()
        .await;
    let caller = daprd()
        .app_id("caller")
        .arg("--config")
        .arg(cfg)
        .start()
        .await;
    let c = reqwest::Client::new();

    let r = c
        .post(caller.url("/v1.0/invoke/callee/method/orders/42?x=1&y=two"))
        .header("x-custom", "hello")
        .body("payload")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-from-app"], "yes");
    assert_eq!(r.headers().get_all("content-type").iter().count(), 1);
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["method"], "POST");
    assert_eq!(got["uri"], "/orders/42?x=1&y=two");
    assert_eq!(got["body"], "payload");
    assert_eq!(got["caller"], "caller");
    assert_eq!(got["callee"], "callee");
    assert_eq!(got["custom"], "hello");
    assert_eq!(
        got["token"], "app-secret",
        "APP_API_TOKEN reaches the app as dapr-api-token"
    );

    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = c
            .request(
                method.clone(),
                caller.url("/v1.0/invoke/callee/method/verbs"),
            )
            .send()
            .await
            .expect("invoke");
        let got: Value = r.json().await.expect("json");
        assert_eq!(got["method"], method.as_str());
    }

    // The app's status and body are relayed as they are.
    let r = c
        .get(caller.url("/v1.0/invoke/callee/method/teapot"))
        .header("x-status", "418")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 418);

    // The dapr-app-id header routes any path.
    let r = c
        .get(caller.url("/any/path?q=1"))
        .header("dapr-app-id", "callee")
        .send()
        .await
        .expect("invoke");
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["uri"], "/any/path?q=1");

    // The callee's own sidecar reaches its app directly.
    let r = c
        .get(callee.url("/v1.0/invoke/callee/method/self"))
        .send()
        .await
        .expect("invoke");
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["uri"], "/self");

    // Ids that are not plain names are refused before any lookup.
    for bad in [
        "callee.ns@evil.example:80",
        "callee.a.b",
        "caller%2F..%2Fx",
        "callee:9",
    ] {
        let r = c
            .get(caller.url(&format!("/v1.0/invoke/{bad}/method/x")))
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status(), 400, "{bad}");
    }

    // An app nobody registered.
    let r = c
        .get(caller.url("/v1.0/invoke/nobody/method/x"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");

    // A sidecar without an app refuses calls for itself.
    let r = c
        .get(caller.url("/v1.0/invoke/caller/method/x"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 500);

    // gRPC InvokeService reaches the same app.
    use dapr::dapr::proto::common::v1::{HttpExtension, InvokeRequest, http_extension::Verb};
    use dapr::dapr::proto::runtime::v1::{InvokeServiceRequest, dapr_client::DaprClient};
    let mut grpc = DaprClient::connect(format!("http://127.0.0.1:{}", caller.grpc))
        .await
        .expect("connect");
    let call = |status: &str| {
        let mut req = tonic::Request::new(InvokeServiceRequest {
            id: "callee".into(),
            message: Some(InvokeRequest {
                method: "grpc-path".into(),
                data: Some(prost_types::Any {
                    type_url: String::new(),
                    value: b"from grpc".to_vec(),
                }),
                content_type: "text/plain".into(),
                http_extension: Some(HttpExtension {
                    verb: Verb::Put as i32,
                    querystring: "k=v".into(),
                }),
            }),
        });
        req.metadata_mut()
            .insert("x-custom", "from-metadata".parse().expect("ascii"));
        req.metadata_mut()
            .insert("x-status", status.parse().expect("ascii"));
        req
    };
    let resp = grpc
        .invoke_service(call("200"))
        .await
        .expect("invoke_service");
    assert_eq!(
        resp.metadata()
            .get("dapr-http-status")
            .and_then(|v| v.to_str().ok()),
        Some("200")
    );
    assert_eq!(
        resp.metadata()
            .get("x-from-app")
            .and_then(|v| v.to_str().ok()),
        Some("yes")
    );
    let resp = resp.into_inner();
    let got: Value = serde_json::from_slice(&resp.data.expect("data").value).expect("json");
    assert_eq!(got["method"], "PUT");
    assert_eq!(got["uri"], "/grpc-path?k=v");
    assert_eq!(got["body"], "from grpc");
    assert_eq!(
        got["custom"], "from-metadata",
        "gRPC metadata reaches the app as headers"
    );

    // An HTTP error from the app is a gRPC error with Dapr's mapping and details.
    let err = grpc
        .invoke_service(call("404"))
        .await
        .expect_err("the app answered 404");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.message(), "Not Found");
    assert_eq!(
        err.metadata()
            .get("dapr-http-status")
            .and_then(|v| v.to_str().ok()),
        Some("404")
    );
}

#[tokio::test]
async fn app_health_checks_gate_readiness_and_invocation() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new()
        .route(
            "/healthz",
            axum::routing::get(move || {
                let ok = flag.load(Ordering::SeqCst);
                async move {
                    if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        )
        .fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let d = daprd()
        .arg("--app-port")
        .arg(port.to_string())
        .arg("--enable-app-health-check")
        .arg("--app-health-probe-interval")
        .arg("1")
        .arg("--app-health-threshold")
        .arg("1")
        .start()
        .await;
    let c = reqwest::Client::new();
    let status = |c: reqwest::Client, url: String| async move {
        c.get(url).send().await.expect("get").status().as_u16()
    };
    let id = d.app_id.clone();
    assert_eq!(
        status(c.clone(), d.url(&format!("/v1.0/invoke/{id}/method/x"))).await,
        200
    );

    healthy.store(false, Ordering::SeqCst);
    let mut waited = 0;
    while status(c.clone(), d.url("/v1.0/healthz")).await != 500 {
        waited += 1;
        assert!(
            waited < 50,
            "healthz never followed the app going unhealthy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status(c.clone(), d.url(&format!("/v1.0/invoke/{id}/method/x"))).await,
        500
    );
    assert_eq!(
        status(c.clone(), d.url("/v1.0/healthz/outbound")).await,
        204,
        "outbound stays ready"
    );

    healthy.store(true, Ordering::SeqCst);
    let mut waited = 0;
    while status(c.clone(), d.url("/v1.0/healthz")).await != 204 {
        waited += 1;
        assert!(waited < 50, "healthz never followed the app recovering");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status(c.clone(), d.url(&format!("/v1.0/invoke/{id}/method/x"))).await,
        200
    );
}

#[tokio::test]
async fn sidecar_waits_for_the_app_port_before_ready() {
    let port = test_support::free_port();
    let mut d = daprd().arg("--app-port").arg(port.to_string()).spawn();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let r = reqwest::get(d.url("/v1.0/healthz"))
        .await
        .expect("healthz answers while waiting");
    assert_eq!(r.status(), 500, "not ready before the app listens");
    let r = reqwest::get(d.url("/v1.0/healthz/outbound"))
        .await
        .expect("outbound");
    assert_eq!(
        r.status(),
        204,
        "outbound is ready while waiting for the app"
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind app port");
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().fallback(echo)).await;
    });
    d.wait_healthy().await;
    assert!(d.log().contains("dapr initialized. Status: Running."));
}

#[tokio::test]
async fn app_max_concurrency_limits_calls_in_flight() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    let app = Router::new().fallback(move || {
        let (f, p) = (f.clone(), p.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            "done"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let d = daprd()
        .args([
            "--app-port",
            &port.to_string(),
            "--app-max-concurrency",
            "1",
        ])
        .start()
        .await;
    let c = reqwest::Client::new();
    let url = d.url(&format!("/v1.0/invoke/{}/method/work", d.app_id));
    let calls = (0..4).map(|_| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            c.post(url)
                .body("x")
                .send()
                .await
                .expect("invoke")
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    assert_eq!(statuses, [200, 200, 200, 200]);
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "the app saw more than one call at a time"
    );
}

#[tokio::test]
async fn http_endpoints_and_url_app_ids_reach_non_dapr_services() {
    let app = start_app().await;
    let endpoint = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: external\nspec:\n  baseUrl: http://127.0.0.1:{}/api\n  headers:\n  - name: x-custom\n    value: from-endpoint\n",
        app.port()
    );
    let dir = resources(&[("endpoint.yaml", &endpoint)]);
    let d = daprd().resources(dir.path()).start().await;
    assert!(
        d.log().contains("HTTPEndpoint loaded: external"),
        "{}",
        d.log()
    );
    let c = reqwest::Client::new();

    let r = c
        .post(d.url("/v1.0/invoke/external/method/orders?x=1"))
        .body("hi")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["uri"], "/api/orders?x=1");
    assert_eq!(
        got["custom"], "from-endpoint",
        "the endpoint's headers are sent"
    );
    assert_eq!(got["body"], "hi");

    let raw = format!("/v1.0/invoke/http://127.0.0.1:{}/method/raw", app.port());
    let got: Value = c
        .get(d.url(&raw))
        .send()
        .await
        .expect("invoke")
        .json()
        .await
        .expect("json");
    assert_eq!(got["uri"], "/raw");
    let encoded = format!(
        "/v1.0/invoke/http%3A%2F%2F127.0.0.1%3A{}/method/enc",
        app.port()
    );
    let got: Value = c
        .get(d.url(&encoded))
        .send()
        .await
        .expect("invoke")
        .json()
        .await
        .expect("json");
    assert_eq!(got["uri"], "/enc");
}

#[tokio::test]
async fn basic_auth_app_ids_trace_context_and_misbehaving_apps() {
    let app = start_app().await;
    let d = daprd()
        .args(["--app-port", &app.port().to_string()])
        .start()
        .await;
    let c = reqwest::Client::new();

    // http://dapr-app-id:<id>@localhost:3500/path
    let got: Value = c
        .get(d.url("/basic/path"))
        .basic_auth("dapr-app-id", Some(&d.app_id))
        .send()
        .await
        .expect("invoke")
        .json()
        .await
        .expect("json");
    assert_eq!(got["uri"], "/basic/path");
    assert_eq!(
        got["authorization"],
        Value::Null,
        "the app id credentials are not forwarded"
    );

    // W3C trace context reaches the app with the caller's trace id.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = c
        .get(d.url(&format!("/v1.0/invoke/{}/method/traced", d.app_id)))
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=x")
        .header("x-status", "200")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    let seen = got["traceparent"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        seen.split('-').nth(1),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "same trace id: {seen}"
    );
    assert_eq!(got["tracestate"], "vendor=x");
}

#[tokio::test]
async fn a_misbehaving_app_only_affects_its_own_calls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An "app" that answers garbage to one request and resets the next.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            n += 1;
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            if n % 2 == 1 {
                let _ = sock.write_all(b"this is not HTTP at all\r\n\r\n").await;
            }
            drop(sock);
        }
    });
    let good = start_app().await;
    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    let _bad = daprd()
        .app_id("bad-app")
        .args(["--app-port", &port.to_string(), "--config", &config])
        .start()
        .await;
    let _good = daprd()
        .app_id("good-app")
        .args(["--app-port", &good.port().to_string(), "--config", &config])
        .start()
        .await;
    let caller = daprd()
        .app_id("caller-of-both")
        .args(["--config", &config])
        .start()
        .await;
    let c = reqwest::Client::new();
    for _ in 0..3 {
        let r = c
            .get(caller.url("/v1.0/invoke/bad-app/method/x"))
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
        let r = c
            .get(caller.url("/v1.0/invoke/good-app/method/y"))
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status(), 200, "the healthy app is unaffected");
    }
    assert_eq!(
        c.get(caller.url("/v1.0/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        204
    );
}

/// Apps that cannot read chunked bodies still get sized ones across two sidecars.
#[tokio::test]
async fn content_length_reaches_apps_across_sidecars() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let answer = match head.lines().find_map(|l| l.strip_prefix("content-length:")) {
                    Some(_) => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string(),
                    None => "HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\n\r\n".to_string(),
                };
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    let dir = resources(&[]);
    let config = test_support::daprd::resolution_config(dir.path());
    let _callee = daprd()
        .app_id("sized-app")
        .args(["--app-port", &port.to_string(), "--config", &config])
        .start()
        .await;
    let caller = daprd()
        .app_id("sized-caller")
        .args(["--config", &config])
        .start()
        .await;
    let r = reqwest::Client::new()
        .post(caller.url("/v1.0/invoke/sized-app/method/x"))
        .body("{\"id\": 1}")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200, "the app got a Content-Length");
}

/// An echo app serving TLS with a fresh self-signed certificate for `localhost`; returns
/// its port and the certificate as PEM.
async fn start_tls_app() -> (u16, String) {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = test_support::certs::self_signed(&["localhost"]);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(cert.chain_der(), cert.key_der())
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper_util::service::TowerToHyperService::new(Router::new().fallback(echo));
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (port, cert.cert_pem().to_string())
}

/// `--app-protocol https`: the app serves TLS with a self-signed certificate, which the
/// sidecar accepts as Dapr does.
#[tokio::test]
async fn https_apps_are_reached_over_tls() {
    let (port, _) = start_tls_app().await;
    let d = daprd()
        .args(["--app-port", &port.to_string(), "--app-protocol", "https"])
        .start()
        .await;
    let r = reqwest::Client::new()
        .post(d.url(&format!("/v1.0/invoke/{}/method/secure?x=1", d.app_id)))
        .body("over tls")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["uri"], "/secure?x=1");
    assert_eq!(got["body"], "over tls");

    // The same app is unreachable in plain HTTP: TLS really is in use.
    let plain = daprd()
        .args(["--app-port", &port.to_string()])
        .start()
        .await;
    let r = reqwest::get(plain.url(&format!("/v1.0/invoke/{}/method/secure", plain.app_id)))
        .await
        .expect("invoke");
    assert_eq!(r.status(), 500);
}

/// `HTTPEndpoint` `clientTLS.rootCA`: an https endpoint is verified against the given
/// anchor, and refused without it.
#[tokio::test]
async fn https_endpoints_are_verified_against_their_root_ca() {
    let (port, pem) = start_tls_app().await;
    let indented: String = pem.lines().map(|l| format!("        {l}\n")).collect();
    let trusted = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: trusted\nspec:\n  baseUrl: https://localhost:{port}\n  clientTLS:\n    rootCA:\n      value: |\n{indented}"
    );
    let untrusted = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: untrusted\nspec:\n  baseUrl: https://localhost:{port}\n"
    );
    let dir = resources(&[("trusted.yaml", &trusted), ("untrusted.yaml", &untrusted)]);
    let d = daprd().resources(dir.path()).start().await;
    let c = reqwest::Client::new();
    let r = c
        .get(d.url("/v1.0/invoke/trusted/method/ok"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200, "{}", d.log());
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["uri"], "/ok");
    let r = c
        .get(d.url("/v1.0/invoke/untrusted/method/ok"))
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 500, "an unverifiable certificate is refused");
}
