//! The real `sentry` binary over real TLS: what it signs, what it refuses, how it
//! rotates its issuer, and (against the test control plane) the Kubernetes validator.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proto::sentry::v1::ca_client::CaClient;
use proto::sentry::v1::sign_certificate_request::TokenValidator;
use proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse};
use rcgen::KeyPair;
use test_support::certs::{csr_pem as csr, forged_csr_pem};
use test_support::{Process, kubectl_ok as kubectl};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

struct Sentry {
    process: Process,
    port: u16,
    credentials: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sentry {
    fn log(&self) -> String {
        self.process.log()
    }

    async fn start(extra: &[&str], config: Option<&str>) -> Sentry {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let credentials = dir.path().join("credentials");
        let path = dir.path().join("config.yaml");
        if let Some(yaml) = config {
            std::fs::write(&path, yaml).expect("config");
        }
        let started =
            test_support::sentry::start(&credentials, config.map(|_| path.as_path()), extra).await;
        Sentry {
            process: started.process,
            port: started.port,
            credentials,
            _dir: dir,
        }
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.credentials.join("ca.crt")).expect("ca.crt")
    }

    async fn client(&self, ca_pem: &str) -> CaClient<Channel> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://127.0.0.1:{}", self.port))
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect to sentry over TLS");
        CaClient::new(channel)
    }
}

fn request(id: &str, namespace: &str, csr: Vec<u8>) -> SignCertificateRequest {
    SignCertificateRequest {
        id: id.into(),
        token: String::new(),
        trust_domain: String::new(),
        namespace: namespace.into(),
        certificate_signing_request: csr,
        token_validator: TokenValidator::Insecure as i32,
        jwt_audiences: vec![],
    }
}

fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| p.expect("pem").contents)
        .collect()
}

/// The subject alternative names `pick` keeps.
fn sans(
    cert: &X509Certificate<'_>,
    pick: impl Fn(&GeneralName<'_>) -> Option<String>,
) -> Vec<String> {
    cert.extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => Some(
                san.general_names
                    .iter()
                    .filter_map(&pick)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn uri_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    sans(cert, |n| match n {
        GeneralName::URI(u) => Some(u.to_string()),
        _ => None,
    })
}

fn dns_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    sans(cert, |n| match n {
        GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    })
}

/// Checks leaf → issuer → one of `roots`.
fn chains_to(resp: &SignCertificateResponse, roots_pem: &str) -> bool {
    let chain = ders(&resp.workload_certificate);
    let roots = ders(roots_pem.as_bytes());
    let (Ok((_, leaf)), Ok((_, issuer))) = (
        X509Certificate::from_der(&chain[0]),
        X509Certificate::from_der(&chain[1]),
    ) else {
        return false;
    };
    leaf.verify_signature(Some(issuer.public_key())).is_ok()
        && roots.iter().any(|r| {
            X509Certificate::from_der(r)
                .map(|(_, root)| issuer.verify_signature(Some(root.public_key())).is_ok())
                .unwrap_or(false)
        })
}

#[tokio::test]
async fn signs_a_p256_workload_certificate_with_its_spiffe_id() {
    let sentry = Sentry::start(
        &[],
        Some("apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: daprsystem\nspec:\n  mtls:\n    enabled: true\n    workloadCertTTL: 2h\n    allowedClockSkew: 10m\n"),
    )
    .await;
    // The generated bundle was persisted, the key readable by its owner only.
    for f in ["ca.crt", "issuer.crt", "issuer.key"] {
        assert!(sentry.credentials.join(f).exists(), "{f} written");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sentry.credentials.join("issuer.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "issuer.key is private");

    let ca = sentry.ca_pem();
    let mut client = sentry.client(&ca).await;
    let key = KeyPair::generate().expect("key");
    let resp = client
        .sign_certificate(request("orders", "shop", csr(&key)))
        .await
        .expect("signed")
        .into_inner();
    assert!(chains_to(&resp, &ca), "leaf → issuer → root");
    assert_eq!(resp.trust_chain_certificates.len(), 1);
    assert_eq!(ders(&resp.trust_chain_certificates[0]), ders(ca.as_bytes()));
    let chain = ders(&resp.workload_certificate);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert_eq!(uri_sans(&leaf), ["spiffe://public/ns/shop/orders"]);
    assert_eq!(
        leaf.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key)
    );
    let eku = leaf
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.server_auth && eku.client_auth);
    assert!(!leaf.is_ca());
    let nb = leaf.validity().not_before.timestamp();
    let na = leaf.validity().not_after.timestamp();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (nb - (now - 600)).abs() < 30,
        "NotBefore is now minus the skew"
    );
    assert!(
        (na - (now + 7200)).abs() < 30,
        "lifetime from workloadCertTTL"
    );
    assert_eq!(resp.valid_until.expect("valid_until").seconds, na);

    // An app's own trust domain is used when it sends one.
    let mut r = request("orders", "shop", csr(&key));
    r.trust_domain = "acme".into();
    let resp = client
        .sign_certificate(r)
        .await
        .expect("signed")
        .into_inner();
    let chain = ders(&resp.workload_certificate);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert_eq!(uri_sans(&leaf), ["spiffe://acme/ns/shop/orders"]);
}

#[tokio::test]
async fn control_plane_services_get_daprs_dns_names() {
    let sentry = Sentry::start(&[], None).await;
    let ca = sentry.ca_pem();
    let client = sentry.client(&ca).await;
    let key = KeyPair::generate().expect("key");
    let names = |id: &'static str, ns: &'static str| {
        let req = request(id, ns, csr(&key));
        let mut client = client.clone();
        async move {
            let resp = client
                .sign_certificate(req)
                .await
                .expect("signed")
                .into_inner();
            let chain = ders(&resp.workload_certificate);
            let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
            dns_sans(&leaf)
        }
    };
    // Sentry runs in dapr-system (the test builder's NAMESPACE).
    assert_eq!(
        names("dapr-injector", "dapr-system").await,
        ["dapr-sidecar-injector.dapr-system.svc"],
        "the injector's webhook Service"
    );
    assert_eq!(
        names("dapr-operator", "dapr-system").await,
        ["dapr-webhook.dapr-system.svc"]
    );
    assert_eq!(names("dapr-scheduler", "dapr-system").await.len(), 3);
    assert!(names("orders", "dapr-system").await.is_empty());
    assert!(
        names("dapr-injector", "shop").await.is_empty(),
        "only in the control plane's namespace"
    );
}

#[tokio::test]
async fn sentry_serves_with_its_own_spiffe_identity() {
    let sentry = Sentry::start(&[], None).await;
    let mut roots = rustls::RootCertStore::empty();
    for der in ders(sentry.ca_pem().as_bytes()) {
        roots.add(der.into()).expect("root");
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", sentry.port))
        .await
        .expect("tcp");
    let tls = connector
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("TLS handshake verified against ca.crt");
    let certs = tls.get_ref().1.peer_certificates().expect("certs");
    let (_, own) = X509Certificate::from_der(&certs[0]).expect("cert");
    assert_eq!(
        uri_sans(&own),
        ["spiffe://cp.example/ns/dapr-system/dapr-sentry"]
    );
}

#[tokio::test]
async fn refuses_malformed_forged_and_non_p256_requests() {
    let sentry = Sentry::start(&[], None).await;
    let mut client = sentry.client(&sentry.ca_pem()).await;
    let key = KeyPair::generate().expect("key");
    let cases: Vec<(&str, SignCertificateRequest, tonic::Code, &str)> = vec![
        (
            "garbage",
            request("orders", "shop", b"not a csr".to_vec()),
            tonic::Code::InvalidArgument,
            "not valid",
        ),
        (
            "forged signature",
            request("orders", "shop", forged_csr_pem(&key)),
            tonic::Code::InvalidArgument,
            "signature",
        ),
        (
            "P-384 key",
            request(
                "orders",
                "shop",
                csr(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("p384")),
            ),
            tonic::Code::InvalidArgument,
            "P-256",
        ),
        (
            "Ed25519 key",
            request(
                "orders",
                "shop",
                csr(&KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519")),
            ),
            tonic::Code::InvalidArgument,
            "P-256",
        ),
        (
            "no id",
            request("", "shop", csr(&key)),
            tonic::Code::InvalidArgument,
            "invalid id",
        ),
        (
            "id with a path",
            request("orders/../admin", "shop", csr(&key)),
            tonic::Code::InvalidArgument,
            "invalid id",
        ),
        (
            "no csr",
            request("orders", "shop", Vec::new()),
            tonic::Code::InvalidArgument,
            "required",
        ),
        (
            "kubernetes validator in standalone",
            SignCertificateRequest {
                token_validator: TokenValidator::Kubernetes as i32,
                ..request("orders", "shop", csr(&key))
            },
            tonic::Code::PermissionDenied,
            "not enabled",
        ),
    ];
    for (what, req, code, text) in cases {
        let err = client.sign_certificate(req).await.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {}", err.message());
        assert!(err.message().contains(text), "{what}: {}", err.message());
    }
    // Still serving after all that.
    client
        .sign_certificate(request("orders", "shop", csr(&key)))
        .await
        .expect("still signing");
}

#[tokio::test]
async fn a_rotated_issuer_is_used_without_a_restart_and_a_broken_one_is_refused() {
    let sentry = Sentry::start(&[], None).await;
    let old_ca = sentry.ca_pem();
    let mut client = sentry.client(&old_ca).await;
    let key = KeyPair::generate().expect("key");

    // A broken change (an issuer key that does not match) is refused; signing goes on.
    let stray = KeyPair::generate().expect("key").serialize_pem();
    std::fs::write(sentry.credentials.join("issuer.key"), &stray).expect("write");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let resp = client
        .sign_certificate(request("orders", "shop", csr(&key)))
        .await
        .expect("still signing")
        .into_inner();
    assert!(chains_to(&resp, &old_ca));
    assert!(
        sentry.log().contains("refusing the changed trust bundle"),
        "{}",
        sentry.log()
    );

    // A whole new bundle: new certificates chain to the new root.
    let fresh = sentry::ca::generate("cp.example").expect("bundle");
    write_bundle(&sentry.credentials, &fresh);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = client
            .sign_certificate(request("orders", "shop", csr(&key)))
            .await
            .expect("signing during rotation")
            .into_inner();
        if chains_to(&resp, &fresh.ca_crt) {
            assert!(!chains_to(&resp, &old_ca));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new issuer was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_bundle(dir: &Path, c: &sentry::ca::Credentials) {
    // Key first: an issuer.crt without its key would be refused until the key arrives.
    std::fs::write(dir.join("ca.crt"), &c.ca_crt).expect("ca");
    std::fs::write(dir.join("issuer.key"), &c.issuer_key).expect("key");
    std::fs::write(dir.join("issuer.crt"), &c.issuer_crt).expect("crt");
}

fn pod(name: &str, ns: &str, sa: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n{annotations}spec:\n  serviceAccountName: {sa}\n  containers:\n  - name: app\n    image: example.invalid/app:1\n"
    )
}

fn token(ns: &str, sa: &str, pod: &str, audience: &str) -> String {
    test_support::bound_token(ns, sa, audience, pod)
}

#[tokio::test]
async fn the_kubernetes_validator_checks_token_pod_and_app_id_on_a_real_api_server() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some() && std::env::var_os("KUBECTL").is_some(),
        "needs the test control plane: scripts/test.sh, or `source tests/k8s/control-plane.sh`"
    );
    let tag = std::process::id();
    let (cp, apps) = (format!("sentry-cp-{tag}"), format!("sentry-apps-{tag}"));
    kubectl(&["create", "namespace", &cp], None);
    kubectl(&["create", "namespace", &apps], None);
    // Only the Configuration CRD is needed (for the app's trust domain).
    let crd =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/dapr/crds/configurations.yaml");
    kubectl(&["apply", "-f", &crd.display().to_string()], None);
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/configurations.dapr.io",
        ],
        None,
    );
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let sentry = Sentry::start(
        &[
            "--mode",
            "kubernetes",
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &cp,
        ],
        None,
    )
    .await;

    // No bundle existed: one was generated into the Secret, its public half into a ConfigMap.
    let keys = kubectl(
        &[
            "get",
            "secret",
            "dapr-trust-bundle",
            "-n",
            &cp,
            "-o",
            "jsonpath={.data}",
        ],
        None,
    );
    for k in ["ca.crt", "issuer.crt", "issuer.key"] {
        assert!(keys.contains(k), "{k} in the Secret: {keys}");
    }
    let ca = kubectl(
        &[
            "get",
            "configmap",
            "dapr-trust-bundle",
            "-n",
            &cp,
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        None,
    );
    assert!(ca.contains("BEGIN CERTIFICATE"));

    kubectl(
        &["create", "serviceaccount", "orders-sa", "-n", &apps],
        None,
    );
    kubectl(
        &["create", "serviceaccount", "payments-sa", "-n", &apps],
        None,
    );
    kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: appcfg\n  namespace: {apps}\nspec:\n  accessControl:\n    defaultAction: allow\n    trustDomain: acme\n"
        )),
    );
    kubectl(
        &["apply", "-f", "-"],
        Some(&pod(
            "orders-pod",
            &apps,
            "orders-sa",
            "    dapr.io/app-id: orders\n    dapr.io/config: appcfg\n",
        )),
    );
    kubectl(
        &["apply", "-f", "-"],
        Some(&pod(
            "payments-pod",
            &apps,
            "payments-sa",
            "    dapr.io/app-id: payments\n",
        )),
    );
    let mut client = sentry.client(&ca).await;
    let key = KeyPair::generate().expect("key");
    let kube_request = |id: &str, ns: &str, token: String| SignCertificateRequest {
        token,
        token_validator: TokenValidator::Kubernetes as i32,
        ..request(id, ns, csr(&key))
    };

    let orders_token = token(&apps, "orders-sa", "orders-pod", "dapr.io/sentry");
    let resp = client
        .sign_certificate(kube_request("orders", &apps, orders_token.clone()))
        .await
        .expect("orders is who it says")
        .into_inner();
    assert!(chains_to(&resp, &ca));
    let chain = ders(&resp.workload_certificate);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert_eq!(
        uri_sans(&leaf),
        [format!("spiffe://acme/ns/{apps}/orders")],
        "trust domain from the app's Configuration"
    );

    let payments_token = token(&apps, "payments-sa", "payments-pod", "dapr.io/sentry");
    let resp = client
        .sign_certificate(kube_request("payments", &apps, payments_token.clone()))
        .await
        .expect("payments is who it says")
        .into_inner();
    let chain = ders(&resp.workload_certificate);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert_eq!(
        uri_sans(&leaf),
        [format!("spiffe://public/ns/{apps}/payments")]
    );

    let refusals = [
        (
            "another app's id",
            kube_request("payments", &apps, orders_token.clone()),
            "app id",
        ),
        (
            "another namespace",
            kube_request("orders", "default", orders_token.clone()),
            "namespace",
        ),
        (
            "a token for another audience",
            kube_request(
                "orders",
                &apps,
                token(&apps, "orders-sa", "orders-pod", "someone-else"),
            ),
            "not authenticated",
        ),
        (
            "no token",
            kube_request("orders", &apps, String::new()),
            "token is required",
        ),
        (
            "a forged token",
            kube_request("orders", &apps, format!("{orders_token}x")),
            "not authenticated",
        ),
        (
            "a control-plane identity",
            kube_request("dapr-operator", &apps, orders_token.clone()),
            "control-plane",
        ),
        (
            "the insecure validator",
            SignCertificateRequest {
                token_validator: TokenValidator::Insecure as i32,
                ..request("orders", &apps, csr(&key))
            },
            "not enabled",
        ),
    ];
    for (what, req, text) in refusals {
        let err = client.sign_certificate(req).await.expect_err(what);
        assert_eq!(
            err.code(),
            tonic::Code::PermissionDenied,
            "{what}: {}",
            err.message()
        );
        assert!(err.message().contains(text), "{what}: {}", err.message());
    }
    let _ = kubectl(&["delete", "namespace", &cp, &apps, "--wait=false"], None);
}
