//! Two real `daprd` processes calling each other over mTLS with certificates from a real
//! `sentry`: identities, refusals at the internal port, renewal and issuer rotation while
//! traffic flows, and access control by the caller's SPIFFE ID.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use security::sentry_client::root_store;
use security::{SentryClient, SpiffeId};
use test_support::certs::Root;
use test_support::{Process, free_port};

struct Sentry {
    _proc: Process,
    port: u16,
    dir: tempfile::TempDir,
    ca: String,
}

impl Sentry {
    async fn start(root: &Root, ttl: &str) -> Sentry {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("dir");
        let creds = dir.path().join("creds");
        let ca = root.pem();
        root.issuer("issuer-1").write_credentials(&creds);
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!("kind: Configuration\nmetadata:\n  name: daprsystem\nspec:\n  mtls:\n    enabled: true\n    workloadCertTTL: {ttl}\n"),
        )
        .expect("config");
        let sentry = test_support::sentry::start(&creds, Some(&config), &[]).await;
        let (proc, port) = (sentry.process, sentry.port);
        Sentry {
            _proc: proc,
            port,
            dir,
            ca,
        }
    }

    fn rotate_issuer(&self, root: &Root, cn: &str) {
        let creds = self.dir.path().join("creds");
        let issuer = root.issuer(cn);
        // The key first: a certificate without its key is refused until the key arrives.
        std::fs::write(creds.join("issuer.key"), issuer.key_pem()).expect("key");
        std::fs::write(creds.join("issuer.crt"), issuer.cert_pem()).expect("crt");
    }

    /// A certificate for `app_id` straight from Sentry, as a test client.
    async fn identity(&self, app_id: &str) -> Arc<security::IdentityCell> {
        SentryClient {
            address: format!("127.0.0.1:{}", self.port),
            roots: root_store(&self.ca).expect("roots"),
            sentry_id: SpiffeId::new("cp.example", "dapr-system", "dapr-sentry"),
            app_id: app_id.into(),
            namespace: "default".into(),
            trust_domain: String::new(),
            token: security::SentryToken::insecure(),
        }
        .start(Duration::from_secs(10))
        .await
        .expect("identity")
    }
}

struct Sidecar {
    proc: Process,
    http: u16,
    grpc: u16,
    internal: u16,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    async fn start(
        app_id: &str,
        app_port: Option<u16>,
        sentry: &Sentry,
        shared: &Path,
        extra_config: &str,
    ) -> Sidecar {
        Self::start_with(app_id, app_port, sentry, shared, extra_config, &[]).await
    }

    async fn start_with(
        app_id: &str,
        app_port: Option<u16>,
        sentry: &Sentry,
        shared: &Path,
        extra_config: &str,
        extra_args: &[&str],
    ) -> Sidecar {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  nameResolution:\n    component: sqlite\n    version: v1\n    configuration:\n      connectionString: \"{}\"\n      updateInterval: 1s\n{extra_config}",
                shared.join("hosts.db").display()
            ),
        )
        .expect("config");
        let (http, grpc, internal) = (free_port(), free_port(), free_port());
        let mut args: Vec<String> = [
            "--app-id",
            app_id,
            "--dapr-http-port",
            &http.to_string(),
            "--dapr-grpc-port",
            &grpc.to_string(),
            "--dapr-internal-grpc-port",
            &internal.to_string(),
            "--dapr-listen-addresses",
            "127.0.0.1",
            "--metrics-port",
            &free_port().to_string(),
            "--config",
            &config.display().to_string(),
            "--enable-mtls",
            "--sentry-address",
            &format!("127.0.0.1:{}", sentry.port),
            "--control-plane-trust-domain",
            "cp.example",
            "--control-plane-namespace",
            "dapr-system",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(p) = app_port {
            args.push("--app-port".into());
            args.push(p.to_string());
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut proc = Process::spawn(
            &test_support::binary("daprd"),
            &args,
            &[("DAPR_TRUST_ANCHORS", sentry.ca.as_str())],
        );
        let healthz = format!("http://127.0.0.1:{http}/v1.0/healthz");
        proc.wait_answers(&healthz, 204, Duration::from_secs(30))
            .await;
        Sidecar {
            proc,
            http,
            grpc,
            internal,
            _dir: dir,
        }
    }

    async fn invoke(
        &self,
        client: &reqwest::Client,
        target: &str,
        verb: reqwest::Method,
        path: &str,
    ) -> (u16, String) {
        match client
            .request(
                verb,
                format!(
                    "http://127.0.0.1:{}/v1.0/invoke/{target}/method/{path}",
                    self.http
                ),
            )
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }
}

async fn start_app() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new().fallback(|h: HeaderMap| async move {
        let caller = h
            .get("dapr-caller-app-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        format!("hello {caller}")
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// Tries a TLS handshake with the sidecar's internal port presenting `identity` (or no
/// certificate), accepting the server if it is `expected`; then sends one byte to make
/// the server's verdict on our certificate visible.
async fn handshake(
    port: u16,
    identity: Option<Arc<security::IdentityCell>>,
    roots: &str,
    expected: &str,
) -> Result<SpiffeId, String> {
    let expected = expected.to_string();
    let config = security::client_config(identity, root_store(roots).expect("roots"), move |id| {
        id.app_id == expected
    });
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // TLS 1.3: the server judges the client certificate after the client's handshake ends,
    // so a refusal shows up on the first read.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 9];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certs")?
        .to_vec();
    security::peer_id(&certs).ok_or_else(|| "no SPIFFE ID".into())
}

#[tokio::test]
async fn sidecars_call_each_other_over_mtls_and_the_internal_port_refuses_strangers() {
    let root = Root::new("root-a");
    let sentry = Sentry::start(&root, "1h").await;
    let shared = tempfile::tempdir().expect("dir");
    let app = start_app().await;
    let callee = Sidecar::start("mtls-callee", Some(app), &sentry, shared.path(), "").await;
    let caller = Sidecar::start("mtls-caller", None, &sentry, shared.path(), "").await;
    let http = reqwest::Client::new();
    let (status, body) = caller
        .invoke(&http, "mtls-callee", reqwest::Method::POST, "hi")
        .await;
    assert_eq!(
        status,
        200,
        "{body}\ncaller:\n{}\ncallee:\n{}",
        caller.proc.log(),
        callee.proc.log()
    );
    assert_eq!(
        body, "hello mtls-caller",
        "the callee saw the caller's certified identity"
    );

    // A client with a certificate from the same Sentry gets in, and sees the callee's ID.
    let friend = sentry.identity("friend").await;
    let id = handshake(
        callee.internal,
        Some(friend.clone()),
        &sentry.ca,
        "mtls-callee",
    )
    .await
    .expect("trusted client");
    assert_eq!(id, SpiffeId::new("public", "default", "mtls-callee"));

    // No certificate: refused.
    let err = handshake(callee.internal, None, &sentry.ca, "mtls-callee")
        .await
        .expect_err("no client certificate");
    assert!(!err.is_empty());

    // A certificate from another root: refused.
    let other_root = Root::new("root-b");
    let other = Sentry::start(&other_root, "1h").await;
    let stranger = other.identity("mtls-caller").await;
    let err = handshake(callee.internal, Some(stranger), &sentry.ca, "mtls-callee")
        .await
        .expect_err("foreign root");
    assert!(!err.is_empty(), "{err}");

    // The server is not who the client expects: the client refuses it.
    let err = handshake(callee.internal, Some(friend), &sentry.ca, "someone-else")
        .await
        .expect_err("mismatched SPIFFE ID");
    assert!(err.contains("unexpected peer identity"), "{err}");

    // Plaintext gRPC to the internal port gets nowhere.
    let plain = tokio::net::TcpStream::connect(("127.0.0.1", callee.internal))
        .await
        .expect("tcp");
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut plain = plain;
        plain
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), plain.read(&mut buf)).await;
        assert!(
            !matches!(n, Ok(Ok(n)) if n > 0 && buf[3] == 0x04),
            "no HTTP/2 SETTINGS in plaintext"
        );
    }
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let root = Root::new("root-x");
    let sentry = Sentry::start(&root, "1h").await;
    let short = Sentry::start(&root, "1s").await;
    let shared = tempfile::tempdir().expect("dir");
    let callee = Sidecar::start(
        "expiry-callee",
        Some(start_app().await),
        &sentry,
        shared.path(),
        "",
    )
    .await;
    // A certificate that lived one second, from the same root, without renewal.
    let cell = short.identity("late").await;
    let frozen = security::IdentityCell::new((*cell.current()).clone(), cell.id().clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = handshake(callee.internal, Some(frozen), &sentry.ca, "expiry-callee")
        .await
        .expect_err("expired certificate");
    assert!(!err.is_empty());
}

#[tokio::test]
async fn renewal_and_issuer_rotation_while_traffic_flows_lose_no_request() {
    let root = Root::new("root-r");
    // Short-lived certificates: each sidecar renews every two seconds or so.
    let sentry = Sentry::start(&root, "4s").await;
    let shared = tempfile::tempdir().expect("dir");
    let callee = Sidecar::start(
        "renew-callee",
        Some(start_app().await),
        &sentry,
        shared.path(),
        "",
    )
    .await;
    let caller = Sidecar::start("renew-caller", None, &sentry, shared.path(), "").await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut sent = 0;
    let mut rotated = false;
    while started.elapsed() < Duration::from_secs(10) {
        if !rotated && started.elapsed() > Duration::from_secs(4) {
            sentry.rotate_issuer(&root, "issuer-2");
            rotated = true;
        }
        let (status, body) = caller
            .invoke(&http, "renew-callee", reqwest::Method::GET, "x")
            .await;
        assert_eq!(
            status,
            200,
            "request {sent} failed: {body}\ncaller:\n{}",
            caller.proc.log()
        );
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{sent} requests, none failed, across renewals and an issuer rotation");
    for s in [&caller, &callee] {
        let renewals = s
            .proc
            .log()
            .matches("renewed the workload certificate")
            .count();
        assert!(renewals >= 3, "renewed {renewals} times:\n{}", s.proc.log());
    }
    // The callee now serves a certificate from the new issuer.
    let cell = sentry.identity("observer").await;
    let expected = "renew-callee".to_string();
    let config = security::client_config(
        Some(cell),
        root_store(&sentry.ca).expect("roots"),
        move |id| id.app_id == expected,
    );
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", callee.internal))
        .await
        .expect("tcp");
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("handshake");
    let chain = tls.get_ref().1.peer_certificates().expect("certs").to_vec();
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert!(
        leaf.issuer().to_string().contains("issuer-2"),
        "served by {}",
        leaf.issuer()
    );
}

#[tokio::test]
async fn access_control_allows_and_denies_by_the_callers_identity() {
    let root = Root::new("root-acl");
    let sentry = Sentry::start(&root, "1h").await;
    let shared = tempfile::tempdir().expect("dir");
    let acl = "  accessControl:\n    defaultAction: deny\n    trustDomain: public\n    policies:\n    - appId: acl-friend\n      defaultAction: deny\n      trustDomain: public\n      namespace: default\n      operations:\n      - name: /allowed/*\n        httpVerb: [GET]\n        action: allow\n";
    let callee = Sidecar::start(
        "acl-callee",
        Some(start_app().await),
        &sentry,
        shared.path(),
        acl,
    )
    .await;
    let friend = Sidecar::start("acl-friend", None, &sentry, shared.path(), "").await;
    let stranger = Sidecar::start("acl-stranger", None, &sentry, shared.path(), "").await;
    let http = reqwest::Client::new();
    let (status, body) = friend
        .invoke(&http, "acl-callee", reqwest::Method::GET, "allowed/1")
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello acl-friend"),
        "{}",
        callee.proc.log()
    );
    for (who, verb, path) in [
        (&friend, reqwest::Method::POST, "allowed/1"),
        (&friend, reqwest::Method::GET, "secret"),
        (&stranger, reqwest::Method::GET, "allowed/1"),
    ] {
        let (status, body) = who.invoke(&http, "acl-callee", verb.clone(), path).await;
        assert_eq!(status, 403, "{verb} {path}: {body}");
        assert!(
            body.contains("access control policy has denied access"),
            "{body}"
        );
    }
}

/// Registers `app_id` in the shared name-resolution table at `address`: a lie, as a
/// compromised registry could tell.
fn register_impostor(shared: &Path, app_id: &str, address: &str) {
    let sql = format!(
        "INSERT INTO hosts (registration_id, address, app_id, namespace, last_update) \
         VALUES ('impostor-{app_id}', '{address}', '{app_id}', 'default', unixepoch(CURRENT_TIMESTAMP)) \
         ON CONFLICT (address) DO UPDATE SET app_id = excluded.app_id, last_update = excluded.last_update;"
    );
    let status = Command::new("sqlite3")
        .arg(shared.join("hosts.db"))
        .arg(sql)
        .status()
        .expect("sqlite3");
    assert!(status.success());
}

#[tokio::test]
async fn grpc_proxying_runs_over_mtls_and_no_sidecar_can_pose_as_another_app() {
    let root = Root::new("root-proxy");
    let sentry = Sentry::start(&root, "1h").await;
    let shared = tempfile::tempdir().expect("dir");
    let (_reporter, app_port) = test_support::apps::grpc_health_app("orders").await;
    let callee = Sidecar::start_with(
        "proxy-callee",
        Some(app_port),
        &sentry,
        shared.path(),
        "",
        &["--app-protocol", "grpc"],
    )
    .await;
    let caller = Sidecar::start("proxy-caller", None, &sentry, shared.path(), "").await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", caller.grpc))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = |app: &str| {
        let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: "orders".into(),
        });
        req.metadata_mut()
            .insert("dapr-app-id", app.parse().expect("ascii"));
        req
    };
    let resp = client
        .check(check("proxy-callee"))
        .await
        .unwrap_or_else(|e| panic!("proxied over mTLS: {e}\n{}", caller.proc.log()))
        .into_inner();
    assert_eq!(
        resp.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Name resolution says `payments` lives at the callee's address, but the sidecar there
    // holds `proxy-callee`'s certificate: both proxying and invocation refuse it.
    register_impostor(
        shared.path(),
        "payments",
        &format!("127.0.0.1:{}", callee.internal),
    );
    let err = client
        .check(check("payments"))
        .await
        .expect_err("an impostor");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{}", err.message());
    let http = reqwest::Client::new();
    let (status, body) = caller
        .invoke(&http, "payments", reqwest::Method::GET, "x")
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("ERR_DIRECT_INVOKE"), "{body}");
}
