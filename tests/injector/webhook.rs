//! The `injector` binary as the API server meets it: it takes its serving certificate
//! from a real `sentry` (with the DNS name `dapr-sidecar-injector.<namespace>.svc`, which
//! the test's TLS client checks), and answers AdmissionReviews on `/mutate` over HTTPS.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use test_support::certs::Root;
use test_support::{Process, free_port};

struct Running {
    _sentry: test_support::sentry::Sentry,
    _injector: Process,
    port: u16,
    root: Root,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = Root::new("injector-test-root");
    let dir = tempfile::tempdir().expect("dir");
    let creds = dir.path().join("creds");
    root.issuer("issuer").write_credentials(&creds);
    let sentry = test_support::sentry::start(&creds, None, &[]).await;
    let anchors = dir.path().join("ca.crt");
    std::fs::write(&anchors, root.pem()).expect("anchors");
    let (port, healthz) = (free_port(), free_port());
    let sentry_address = format!("127.0.0.1:{}", sentry.port);
    let anchors_path = anchors.display().to_string();
    let mut injector = Process::spawn(
        &test_support::binary("injector"),
        &[
            "-port",
            &port.to_string(),
            "-listen-address",
            "127.0.0.1",
            "-healthz-port",
            &healthz.to_string(),
            "-healthz-listen-address",
            "127.0.0.1",
        ],
        &[
            ("SIDECAR_IMAGE", "ghcr.io/example/daprd:test"),
            ("NAMESPACE", "dapr-system"),
            ("DAPR_TRUST_ANCHORS_FILE", &anchors_path),
            ("DAPR_SENTRY_ADDRESS", &sentry_address),
            (
                "DAPR_CONTROL_PLANE_TRUST_DOMAIN",
                test_support::sentry::TRUST_DOMAIN,
            ),
        ],
    );
    injector
        .wait_answers(
            &format!("http://127.0.0.1:{healthz}/healthz"),
            200,
            Duration::from_secs(30),
        )
        .await;
    injector.wait_listening(port, Duration::from_secs(10)).await;
    Running {
        _sentry: sentry,
        _injector: injector,
        port,
        root,
        _dir: dir,
    }
}

/// POSTs `body` to `/mutate` over TLS, checking the server's name against `server_name`.
async fn post(
    r: &Running,
    server_name: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(r.root.root_store())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", r.port))
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::post("/mutate")
        .header("host", server_name)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}

fn review(annotations: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "r-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web-1", "annotations": annotations},
                "spec": {"containers": [{"name": "web", "image": "web"}]},
            },
        },
    }))
    .expect("json")
}

#[tokio::test]
async fn the_webhook_serves_a_sentry_certificate_and_patches_pods() {
    let r = start().await;
    let (status, body) = post(
        &r,
        "dapr-sidecar-injector.dapr-system.svc",
        "application/json",
        review(
            json!({"dapr.io/enabled": "true", "dapr.io/app-id": "web", "dapr.io/app-port": "8080"}),
        ),
    )
    .await
    .expect("the certificate names the injector's Service");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["response"]["uid"], "r-1");
    assert_eq!(answer["response"]["allowed"], true);
    let patch = base64::engine::general_purpose::STANDARD
        .decode(answer["response"]["patch"].as_str().expect("patch"))
        .expect("base64");
    let ops: Vec<Value> = serde_json::from_slice(&patch).expect("ops");
    let sidecar = ops
        .iter()
        .find(|op| op["path"] == "/spec/containers/-")
        .map(|op| &op["value"])
        .expect("the daprd container");
    assert_eq!(sidecar["name"], "daprd");
    assert_eq!(sidecar["image"], "ghcr.io/example/daprd:test");
    let args: Vec<&str> = sidecar["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let line = args.join(" ");
    assert!(line.contains("--app-id web"), "{line}");
    assert!(line.contains("--app-port 8080"), "{line}");
    assert!(
        line.contains("--sentry-address 127.0.0.1:"),
        "the injector's own Sentry address goes to the sidecar: {line}"
    );
    let anchors = sidecar["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "DAPR_TRUST_ANCHORS")
        .and_then(|e| e["value"].as_str())
        .expect("trust anchors");
    assert_eq!(anchors, r.root.pem());

    // The certificate is not good for another name.
    let wrong = post(
        &r,
        "somewhere-else.dapr-system.svc",
        "application/json",
        review(json!({})),
    )
    .await;
    assert!(wrong.is_err(), "{wrong:?}");

    // Bad requests get Dapr's answers.
    let (status, _) = post(
        &r,
        "dapr-sidecar-injector.dapr-system.svc",
        "text/plain",
        b"{}".to_vec(),
    )
    .await
    .expect("answered");
    assert_eq!(status, 415);
    let (status, body) = post(
        &r,
        "dapr-sidecar-injector.dapr-system.svc",
        "application/json",
        b"{oops".to_vec(),
    )
    .await
    .expect("answered");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).starts_with("can't decode body"));
}
