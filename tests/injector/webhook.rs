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
use test_support::{Process, deployment, free_port};

struct Running {
    _sentry: test_support::sentry::Sentry,
    _injector: Process,
    port: u16,
    root: Root,
    _dir: tempfile::TempDir,
}

async fn start(kubeconfig: Option<&str>) -> Running {
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
    let mut args = vec![
        "-port".to_string(),
        port.to_string(),
        "-listen-address".into(),
        "127.0.0.1".into(),
        "-healthz-port".into(),
        healthz.to_string(),
        "-healthz-listen-address".into(),
        "127.0.0.1".into(),
    ];
    if let Some(k) = kubeconfig {
        args.extend(["-kubeconfig".to_string(), k.to_string()]);
    }
    let mut injector = Process::spawn(
        &test_support::binary("injector"),
        &args,
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
    let r = start(None).await;
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

/// Deletes what a test created in the shared cluster, even when it fails.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = test_support::kubectl(&args, None);
        }
    }
}

fn pods(namespace: &str, app: &str) -> Vec<Value> {
    let out = test_support::kubectl_ok(
        &[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            &format!("app={app}"),
            "-o",
            "json",
        ],
        None,
    );
    let list: Value = serde_json::from_str(&out).expect("pod list");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The real API server calls the injector for the Pods the real controller-manager
/// creates from Deployments: an annotated Deployment's Pod is stored with the sidecar,
/// an unannotated one's without.
#[tokio::test]
async fn pods_of_an_annotated_deployment_are_stored_with_the_sidecar() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "this test needs the test control plane: run scripts/test.sh, or `source tests/k8s/control-plane.sh`"
    );
    let kubeconfig = std::env::var("KUBECONFIG").unwrap_or_default();
    let r = start(Some(&kubeconfig)).await;
    let unique = format!("inj{}", r.port);
    let namespace = unique.clone();
    let mut cleanup = Cleanup(Vec::new());
    test_support::kubectl_ok(&["create", "namespace", &namespace], None);
    cleanup.0.push(vec![
        "delete".into(),
        "namespace".into(),
        namespace.clone(),
        "--wait=false".into(),
    ]);
    test_support::kubectl_ok(
        &[
            "label",
            "namespace",
            &namespace,
            &format!("rdapr-injector-test={unique}"),
        ],
        None,
    );
    // Installed without a caBundle, as the chart installs it: the injector fills it in.
    let webhook = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "dapr-sidecar-injector"},
        "webhooks": [{
            "name": "sidecar-injector.dapr.io",
            "clientConfig": {
                "url": format!("https://dapr-sidecar-injector.dapr-system.svc:{}/mutate", r.port),
            },
            "rules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "operations": ["CREATE"],
            }],
            // Only this test's namespace: the cluster is shared with other tests.
            "namespaceSelector": {"matchLabels": {"rdapr-injector-test": unique}},
            "admissionReviewVersions": ["v1", "v1beta1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
        }],
    });
    test_support::kubectl_ok(&["apply", "-f", "-"], Some(&webhook.to_string()));
    cleanup.0.insert(
        0,
        vec![
            "delete".into(),
            "mutatingwebhookconfiguration".into(),
            "dapr-sidecar-injector".into(),
        ],
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(r.root.pem());
    let started = std::time::Instant::now();
    loop {
        let bundle = test_support::kubectl_ok(
            &[
                "get",
                "mutatingwebhookconfiguration",
                "dapr-sidecar-injector",
                "-o",
                "jsonpath={.webhooks[0].clientConfig.caBundle}",
            ],
            None,
        );
        if bundle.trim() == expected {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the injector did not set the caBundle: {bundle:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    test_support::kubectl_ok(
        &["apply", "-n", &namespace, "-f", "-"],
        Some(&deployment(
            "orders",
            &json!({"dapr.io/enabled": "true", "dapr.io/app-id": "orders", "dapr.io/app-port": "8080"}),
        )),
    );
    test_support::kubectl_ok(
        &["apply", "-n", &namespace, "-f", "-"],
        Some(&deployment("plain", &json!({}))),
    );
    let mut found = (Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    while found.0.is_empty() || found.1.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the controller-manager made no Pods"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        found = (pods(&namespace, "orders"), pods(&namespace, "plain"));
    }
    let names = |pod: &Value| -> Vec<String> {
        pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let injected = &found.0[0];
    assert_eq!(names(injected), ["app", "daprd"], "{injected:#}");
    assert_eq!(
        injected["metadata"]["labels"]["dapr.io/sidecar-injected"],
        "true"
    );
    let daprd = &injected["spec"]["containers"][1];
    let line: Vec<&str> = daprd["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        line.join(" ")
            .contains("--app-id orders --app-protocol http"),
        "{line:?}"
    );
    assert!(
        injected["spec"]["volumes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["name"] == "dapr-identity-token")),
        "the Sentry token volume"
    );
    let app_env: Vec<&str> = injected["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        app_env,
        ["DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "APP_PROTOCOL"]
    );
    assert_eq!(
        names(&found.1[0]),
        ["app"],
        "an unannotated Pod is untouched"
    );
}
