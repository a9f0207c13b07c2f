//! Who may have which identity: name rules, the insecure validator, and the Kubernetes
//! validator against a mocked API server that expects each call in order (TokenReview,
//! then the Pod, then the app's Configuration) and answers as a real one would.

use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;

const SENTRY_ID: &str = "spiffe://cp.example/ns/dapr-system/dapr-sentry";

/// One expected API call: method, path, and the answer (status, JSON body).
struct Call {
    method: &'static str,
    path: String,
    status: u16,
    reply: Value,
}

fn call(method: &'static str, path: &str, status: u16, reply: Value) -> Call {
    Call {
        method,
        path: path.to_string(),
        status,
        reply,
    }
}

/// A client whose API server answers `script` in order; the task returns the request
/// bodies it received.
fn api_server(script: Vec<Call>) -> (kube::Client, tokio::task::JoinHandle<Vec<Value>>) {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for expected in script {
            let (request, reply) = handle.next_request().await.expect("the expected call");
            assert_eq!(request.method().as_str(), expected.method);
            assert_eq!(request.uri().path(), expected.path);
            let body = request.into_body().collect_bytes().await.expect("body");
            bodies.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            let response = Response::builder()
                .status(expected.status)
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::to_vec(&expected.reply).expect("json"),
                ))
                .expect("response");
            reply.send_response(response);
        }
        bodies
    });
    (kube::Client::new(mock, "default"), server)
}

fn validator(client: kube::Client) -> KubernetesValidator {
    KubernetesValidator::new(
        client,
        SENTRY_ID.into(),
        "dapr-system".into(),
        "cp.example".into(),
    )
}

/// Validates `claim` against the scripted API server; also returns the request bodies.
async fn validate(claim: &Claim, script: Vec<Call>) -> (Result<Identity, Refusal>, Vec<Value>) {
    let (client, server) = api_server(script);
    let v = validator(client);
    let result = v.validate(claim).await;
    drop(v);
    let bodies = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the API server saw every expected call")
        .expect("API server task");
    (result, bodies)
}

fn claim(id: &str, namespace: &str) -> Claim {
    Claim {
        id: id.into(),
        namespace: namespace.into(),
        trust_domain: String::new(),
        token: "projected-token".into(),
    }
}

const REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

fn reviewed(authenticated: bool, username: &str, pod: Option<&str>) -> Call {
    let mut user = json!({ "username": username, "uid": "0b5e" });
    if let Some(pod) = pod {
        user["extra"] = json!({ "authentication.kubernetes.io/pod-name": [pod] });
    }
    let mut status = json!({ "authenticated": authenticated, "user": user });
    if !authenticated {
        status = json!({ "authenticated": false, "error": "token has expired" });
    }
    call(
        "POST",
        REVIEWS,
        201,
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": { "token": "projected-token" },
            "status": status,
        }),
    )
}

fn pod(namespace: &str, name: &str, sa: &str, annotations: Value) -> Call {
    call(
        "GET",
        &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
        200,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "namespace": namespace, "annotations": annotations },
            "spec": { "serviceAccountName": sa, "containers": [] },
        }),
    )
}

fn not_found(path: &str) -> Call {
    call(
        "GET",
        path,
        404,
        json!({
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": "not found",
            "reason": "NotFound",
            "code": 404,
        }),
    )
}

fn server_error(method: &'static str, path: &str) -> Call {
    call(
        method,
        path,
        500,
        json!({
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": "etcdserver: request timed out",
            "reason": "InternalError",
            "code": 500,
        }),
    )
}

fn configuration(namespace: &str, name: &str, trust_domain: Option<&str>) -> Call {
    let spec = match trust_domain {
        Some(td) => json!({ "accessControl": { "defaultAction": "allow", "trustDomain": td } }),
        None => json!({ "tracing": { "samplingRate": "1" } }),
    };
    call(
        "GET",
        &format!("/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations/{name}"),
        200,
        json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": { "name": name, "namespace": namespace },
            "spec": spec,
        }),
    )
}

const ORDERS_SA: &str = "system:serviceaccount:shop:orders-sa";

fn denied(result: Result<Identity, Refusal>, text: &str) {
    match result {
        Err(Refusal::Denied(m)) => assert!(m.contains(text), "{m:?} should say {text:?}"),
        other => panic!("expected a denial saying {text:?}, got {other:?}"),
    }
}

#[test]
fn names_are_dns_label_like() {
    for good in ["orders", "dapr-sentry", "a.b_c-1", "A", &"x".repeat(253)] {
        assert!(valid_name(good), "{good:?}");
    }
    for bad in [
        "",
        "a/b",
        "../admin",
        "a b",
        "ns:x",
        "café",
        &"x".repeat(254),
    ] {
        assert!(!valid_name(bad), "{bad:?}");
    }
}

#[test]
fn the_insecure_validator_believes_the_request() {
    let id = insecure(&Claim {
        token: String::new(),
        ..claim("orders", "shop")
    })
    .expect("identity");
    assert_eq!(
        id,
        Identity {
            trust_domain: "public".into(),
            namespace: "shop".into(),
            id: "orders".into(),
        }
    );
    assert_eq!(id.spiffe_id(), "spiffe://public/ns/shop/orders");
    let own = insecure(&Claim {
        trust_domain: "acme".into(),
        ..claim("orders", "shop")
    })
    .expect("identity");
    assert_eq!(own.spiffe_id(), "spiffe://acme/ns/shop/orders");
    let err = insecure(&Claim {
        trust_domain: "acme/ns/evil".into(),
        ..claim("orders", "shop")
    })
    .expect_err("a trust domain with a path");
    assert!(matches!(err, Refusal::BadRequest(m) if m.contains("trust domain")));
}

#[tokio::test]
async fn a_token_for_the_pods_service_account_gets_the_apps_identity() {
    let (result, bodies) = validate(
        &claim("orders", "shop"),
        vec![
            reviewed(true, ORDERS_SA, Some("orders-pod")),
            pod(
                "shop",
                "orders-pod",
                "orders-sa",
                json!({ "dapr.io/app-id": "orders", "dapr.io/config": "appcfg" }),
            ),
            configuration("shop", "appcfg", Some("acme")),
        ],
    )
    .await;
    let id = result.expect("accepted");
    assert_eq!(id.spiffe_id(), "spiffe://acme/ns/shop/orders");
    let review = &bodies[0];
    assert_eq!(review["spec"]["token"], "projected-token");
    assert_eq!(
        review["spec"]["audiences"],
        json!(["dapr.io/sentry", SENTRY_ID]),
        "Sentry's audiences are asked for"
    );
}

#[tokio::test]
async fn without_a_configuration_the_trust_domain_is_public_and_the_app_id_the_pods_name() {
    let (result, _) = validate(
        &claim("worker-0", "shop"),
        vec![
            reviewed(true, "system:serviceaccount:shop:default", Some("worker-0")),
            pod("shop", "worker-0", "default", json!({})),
        ],
    )
    .await;
    assert_eq!(
        result.expect("accepted").spiffe_id(),
        "spiffe://public/ns/shop/worker-0"
    );

    // A Configuration without accessControl.trustDomain, or none at all: public too.
    for config in [
        configuration("shop", "appcfg", None),
        not_found("/apis/dapr.io/v1alpha1/namespaces/shop/configurations/appcfg"),
    ] {
        let (result, _) = validate(
            &claim("orders", "shop"),
            vec![
                reviewed(true, ORDERS_SA, Some("orders-pod")),
                pod(
                    "shop",
                    "orders-pod",
                    "orders-sa",
                    json!({ "dapr.io/app-id": "orders", "dapr.io/config": "appcfg" }),
                ),
                config,
            ],
        )
        .await;
        assert_eq!(
            result.expect("accepted").trust_domain,
            DEFAULT_APP_TRUST_DOMAIN
        );
    }
}

#[tokio::test]
async fn no_token_is_refused_without_asking_the_api_server() {
    let (result, _) = validate(
        &Claim {
            token: String::new(),
            ..claim("orders", "shop")
        },
        vec![],
    )
    .await;
    denied(result, "token is required");
}

#[tokio::test]
async fn a_token_the_api_server_rejects_is_refused() {
    let (result, _) = validate(&claim("orders", "shop"), vec![reviewed(false, "", None)]).await;
    denied(result, "not authenticated: token has expired");
}

#[tokio::test]
async fn a_token_for_another_namespace_is_refused() {
    let (result, _) = validate(
        &claim("orders", "other"),
        vec![reviewed(true, ORDERS_SA, Some("orders-pod"))],
    )
    .await;
    denied(result, "namespace");
}

#[tokio::test]
async fn a_token_whose_pod_is_another_app_is_refused() {
    let (result, _) = validate(
        &claim("payments", "shop"),
        vec![
            reviewed(true, ORDERS_SA, Some("orders-pod")),
            pod(
                "shop",
                "orders-pod",
                "orders-sa",
                json!({ "dapr.io/app-id": "orders" }),
            ),
        ],
    )
    .await;
    denied(result, "app id");
}

#[tokio::test]
async fn tokens_that_do_not_lead_to_their_pod_are_refused() {
    let cases = vec![
        (
            "not a ServiceAccount",
            vec![reviewed(true, "kubernetes-admin", Some("orders-pod"))],
            "is not a ServiceAccount",
        ),
        (
            "a malformed username",
            vec![reviewed(true, "system:serviceaccount:shop", None)],
            "malformed username",
        ),
        (
            "not bound to a Pod",
            vec![reviewed(true, ORDERS_SA, None)],
            "not bound to a Pod",
        ),
        (
            "the Pod is gone",
            vec![
                reviewed(true, ORDERS_SA, Some("orders-pod")),
                not_found("/api/v1/namespaces/shop/pods/orders-pod"),
            ],
            "not found",
        ),
        (
            "the Pod runs as another ServiceAccount",
            vec![
                reviewed(true, ORDERS_SA, Some("orders-pod")),
                pod(
                    "shop",
                    "orders-pod",
                    "payments-sa",
                    json!({ "dapr.io/app-id": "orders" }),
                ),
            ],
            "runs as",
        ),
    ];
    for (what, script, text) in cases {
        let (result, _) = validate(&claim("orders", "shop"), script).await;
        match result {
            Err(Refusal::Denied(m)) => assert!(m.contains(text), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn control_plane_identities_need_their_own_service_account_in_the_control_plane_namespace() {
    let operator_sa = "system:serviceaccount:dapr-system:dapr-operator";
    let (result, _) = validate(
        &claim("dapr-operator", "dapr-system"),
        vec![
            reviewed(true, operator_sa, Some("dapr-operator-0")),
            pod("dapr-system", "dapr-operator-0", "dapr-operator", json!({})),
        ],
    )
    .await;
    assert_eq!(
        result.expect("the operator").spiffe_id(),
        "spiffe://cp.example/ns/dapr-system/dapr-operator",
        "the control plane's trust domain"
    );

    // An app's ServiceAccount asking for a control-plane name.
    let (result, _) = validate(
        &claim("dapr-sentry", "shop"),
        vec![
            reviewed(true, ORDERS_SA, Some("orders-pod")),
            pod(
                "shop",
                "orders-pod",
                "orders-sa",
                json!({ "dapr.io/app-id": "dapr-sentry" }),
            ),
        ],
    )
    .await;
    denied(result, "control-plane identity");

    // The right namespace, another control-plane service's account.
    let (result, _) = validate(
        &claim("dapr-sentry", "dapr-system"),
        vec![
            reviewed(true, operator_sa, Some("dapr-operator-0")),
            pod("dapr-system", "dapr-operator-0", "dapr-operator", json!({})),
        ],
    )
    .await;
    denied(result, "control-plane identity");
}

#[tokio::test]
async fn api_server_failures_are_backend_errors_not_denials() {
    let cases = vec![
        ("TokenReview", vec![server_error("POST", REVIEWS)]),
        (
            "reading pod",
            vec![
                reviewed(true, ORDERS_SA, Some("orders-pod")),
                server_error("GET", "/api/v1/namespaces/shop/pods/orders-pod"),
            ],
        ),
        (
            "reading Configuration",
            vec![
                reviewed(true, ORDERS_SA, Some("orders-pod")),
                pod(
                    "shop",
                    "orders-pod",
                    "orders-sa",
                    json!({ "dapr.io/app-id": "orders", "dapr.io/config": "appcfg" }),
                ),
                server_error(
                    "GET",
                    "/apis/dapr.io/v1alpha1/namespaces/shop/configurations/appcfg",
                ),
            ],
        ),
    ];
    for (what, script) in cases {
        let (result, _) = validate(&claim("orders", "shop"), script).await;
        match result {
            Err(Refusal::Backend(m)) => assert!(m.contains(what), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}
