//! Loading `--resources-path` folders in the real binary: multi-document files, scopes,
//! `envRef`, bad documents, init failures with and without `ignoreErrors`.

use std::time::Duration;

use test_support::daprd::{component, daprd, resources};
use test_support::free_port;

#[tokio::test]
async fn loads_documents_and_skips_bad_ones() {
    let multi = format!(
        "{}---\n{}---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata:\n  name: s\n",
        component("one", "state.in-memory", &[]),
        component("two", "state.in-memory", &[("keyPrefix", "none")])
    );
    let scoped = format!(
        "{}scopes:\n- someone-else\n",
        component("scoped", "state.in-memory", &[])
    );
    let dir = resources(&[
        ("multi.yaml", &multi),
        ("scoped.yaml", &scoped),
        ("broken.yaml", "kind: Component\nmetadata: [oops\n"),
        ("notes.txt", "not a resource"),
    ]);
    let d = daprd().resources(dir.path()).start().await;
    let meta = d.metadata().await;
    assert_eq!(d.component_names().await, ["one", "two"]);
    let log = d.log();
    assert!(
        log.contains("broken.yaml") && log.contains("invalid YAML"),
        "{log}"
    );
    let caps = &meta["components"][0]["capabilities"];
    assert!(
        caps.as_array()
            .is_some_and(|c| c.iter().any(|v| v == "ETAG")),
        "{meta}"
    );
}

#[tokio::test]
async fn env_ref_values_reach_the_component() {
    let yaml = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: lite\nspec:\n  type: state.sqlite\n  version: v1\n  metadata:\n  - name: connectionString\n    envRef: TEST_SQLITE_PATH\n";
    let dir = resources(&[("lite.yaml", yaml)]);
    let db = tempfile::tempdir().expect("tempdir");
    let path = db.path().join("state.db");
    let d = daprd()
        .resources(dir.path())
        .env("TEST_SQLITE_PATH", &path.display().to_string())
        .start()
        .await;
    let client = reqwest::Client::new();
    let r = client
        .post(d.url("/v1.0/state/lite"))
        .body(r#"[{"key":"k","value":1}]"#)
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 204);
    assert!(
        path.exists(),
        "the sqlite file named by the env var was created"
    );
}

#[tokio::test]
async fn failing_component_stops_startup() {
    let closed = free_port();
    let yaml = format!(
        "{}  initTimeout: 2s\n",
        component(
            "down",
            "state.redis",
            &[("redisHost", &format!("127.0.0.1:{closed}"))]
        )
    );
    let dir = resources(&[("down.yaml", &yaml)]);
    let mut d = daprd().resources(dir.path()).spawn();
    let status = d.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success());
    let log = d.log();
    assert!(log.contains("down (state.redis/v1)"), "{log}");
}

#[tokio::test]
async fn ignore_errors_lets_startup_continue() {
    let closed = free_port();
    let yaml = format!(
        "{}  ignoreErrors: true\n  initTimeout: 2s\n",
        component(
            "down",
            "state.redis",
            &[("redisHost", &format!("127.0.0.1:{closed}"))]
        )
    );
    let dir = resources(&[
        ("down.yaml", &yaml),
        ("ok.yaml", &component("ok", "state.in-memory", &[])),
    ]);
    let d = daprd().resources(dir.path()).start().await;
    assert_eq!(d.component_names().await, ["ok"]);
    let r = reqwest::get(d.url("/v1.0/state/down/k"))
        .await
        .expect("get");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_STATE_STORE_NOT_FOUND");
}

#[tokio::test]
async fn unknown_component_types_are_fatal() {
    let dir = resources(&[("x.yaml", &component("x", "nosuch.thing", &[]))]);
    let mut d = daprd().resources(dir.path()).spawn();
    assert!(!d.wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        d.log().contains("incorrect type nosuch.thing"),
        "{}",
        d.log()
    );
    let dir = resources(&[("x.yaml", &component("x", "state.nosuch", &[]))]);
    let mut d = daprd().resources(dir.path()).spawn();
    assert!(!d.wait_exit(Duration::from_secs(10)).await.success());
}

#[tokio::test]
async fn duplicate_names_are_fatal() {
    let c = component("same", "state.in-memory", &[]);
    let dir = resources(&[("a.yaml", &c), ("b.yaml", &c)]);
    let mut d = daprd().resources(dir.path()).spawn();
    assert!(!d.wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        d.log()
            .contains("duplicate definition of Component name same")
    );
}

#[tokio::test]
async fn no_state_stores_means_not_configured() {
    let dir = resources(&[]);
    let d = daprd().resources(dir.path()).start().await;
    let r = reqwest::get(d.url("/v1.0/state/statestore/k"))
        .await
        .expect("get");
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "ERR_STATE_STORE_NOT_CONFIGURED");
}

#[tokio::test]
async fn secret_refs_without_a_secret_store_park_the_component() {
    let yaml = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: parked\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisPassword\n    secretKeyRef:\n      name: redis\n      key: password\n";
    let dir = resources(&[
        ("p.yaml", yaml),
        ("ok.yaml", &component("ok", "state.in-memory", &[])),
    ]);
    let d = daprd().resources(dir.path()).start().await;
    assert_eq!(d.component_names().await, ["ok"]);
    assert!(
        d.log()
            .contains("references a secret store that isn't loaded")
    );
}

#[tokio::test]
async fn configuration_features_are_reported() {
    let cfg = "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  features:\n  - name: Fancy\n    enabled: true\n";
    let dir = resources(&[("c.yaml", cfg)]);
    let path = dir.path().join("c.yaml");
    let d = daprd()
        .arg("--config")
        .arg(path.display().to_string())
        .start()
        .await;
    let meta = d.metadata().await;
    assert_eq!(meta["enabledFeatures"], serde_json::json!(["Fancy"]));
    let bad = resources(&[("c.yaml", "kind: Configuration\nspec: [\n")]);
    let mut d = daprd()
        .arg("--config")
        .arg(bad.path().join("c.yaml").display().to_string())
        .spawn();
    assert!(
        !d.wait_exit(Duration::from_secs(10)).await.success(),
        "a malformed configuration is fatal"
    );
}

/// Go's JSON decoder, which Dapr reads manifests with, matches field names in any case:
/// `baseURL`, `Spec`, `TYPE` work from files as from the operator.
#[tokio::test]
async fn field_names_match_whatever_their_case() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let endpoint = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: cased\nspec:\n  baseURL: http://127.0.0.1:{port}\n"
    );
    let store = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: shouty\nSpec:\n  TYPE: state.in-memory\n  Version: v1\n";
    let dir = resources(&[("endpoint.yaml", &endpoint), ("store.yaml", store)]);
    let d = daprd().resources(dir.path()).start().await;
    assert!(!d.log().contains("is required"), "{}", d.log());
    assert_eq!(d.component_names().await, ["shouty"]);
    let r = reqwest::get(d.url("/v1.0/invoke/cased/method/hello"))
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "hi");
}
