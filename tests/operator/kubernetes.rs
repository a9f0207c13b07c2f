//! The operator and the sidecar's Kubernetes mode against a real control plane: etcd,
//! kube-apiserver and kube-controller-manager built from their Go modules and started on
//! loopback by `tests/k8s/control-plane.sh`, with the CRDs from `charts/dapr/crds`.
//! Resources are applied with the real `kubectl`; the real `operator` and `daprd` binaries
//! run as processes.
//!
//! The tests share one cluster and each starts its own operator, so they take turns.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::operator::Operator;
use test_support::{Process, eventually, free_port, kubectl, kubectl_ok};
use tokio::sync::Mutex;

static TURN: OnceLock<Mutex<()>> = OnceLock::new();
static CRDS: OnceLock<()> = OnceLock::new();
static NEXT_NS: AtomicU32 = AtomicU32::new(0);

fn turn() -> &'static Mutex<()> {
    TURN.get_or_init(|| Mutex::new(()))
}

fn require_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some() && std::env::var_os("KUBECTL").is_some(),
        "these tests need the test control plane: run scripts/test.sh, or by hand \
         `source tests/k8s/control-plane.sh` (see tests/README.md)"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn apply(yaml: &str) {
    kubectl_ok(&["apply", "-f", "-"], Some(yaml));
}

fn ensure_crds() {
    CRDS.get_or_init(|| {
        // The operators' own namespace (their webhook certificate lives there).
        let _ = kubectl(&["create", "namespace", "dapr-system"], None);
        let dir = repo().join("charts/dapr/crds");
        kubectl_ok(&["apply", "-f", &dir.display().to_string()], None);
        kubectl_ok(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/components.dapr.io",
                "crd/configurations.dapr.io",
                "crd/subscriptions.dapr.io",
                "crd/resiliencies.dapr.io",
                "crd/httpendpoints.dapr.io",
            ],
            None,
        );
    });
}

/// A namespace of its own for one test, removed when dropped.
struct Namespace(String);

impl Namespace {
    fn new(tag: &str) -> Self {
        let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{tag}-{}-{n}", std::process::id());
        kubectl_ok(&["create", "namespace", &name], None);
        Namespace(name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

struct Sidecar {
    process: Process,
    http: u16,
}

impl Sidecar {
    async fn start(namespace: &str, app_id: &str, operator: &Operator) -> Self {
        Self::start_with(namespace, app_id, operator, &[], &[]).await
    }

    async fn start_with(
        namespace: &str,
        app_id: &str,
        operator: &Operator,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let (http, grpc, internal, metrics) = (free_port(), free_port(), free_port(), free_port());
        let mut args: Vec<String> = [
            "--mode",
            "kubernetes",
            "--control-plane-address",
            &format!("127.0.0.1:{}", operator.port),
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
            &metrics.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut env_all = vec![("NAMESPACE", namespace)];
        env_all.extend_from_slice(env);
        let mut process = Process::spawn(&test_support::binary("daprd"), &args, &env_all);
        let url = format!("http://127.0.0.1:{http}/v1.0/healthz");
        process
            .wait_answers(&url, 204, Duration::from_secs(30))
            .await;
        Sidecar { process, http }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    async fn component_names(&self) -> Vec<String> {
        test_support::daprd::component_names_at(self.http).await
    }

    /// Saves one value; the status and body.
    async fn save(&self, store: &str, key: &str, value: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .post(self.url(&format!("/v1.0/state/{store}")))
            .json(&json!([{"key": key, "value": value}]))
            .send()
            .await
            .expect("save");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }
}

fn redis_hget(key: &str) -> String {
    let port = std::env::var("REDIS_PORT").expect("REDIS_PORT (scripts/services.sh)");
    let out = Command::new("redis-cli")
        .args(["-p", &port, "HGET", key, "data"])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn components_reach_a_kubernetes_sidecar_and_follow_changes_without_restart() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let ns = Namespace::new("lifecycle");
    let redis = format!(
        "127.0.0.1:{}",
        std::env::var("REDIS_PORT").expect("REDIS_PORT")
    );
    // The Redis address lives in a Secret: the operator resolves it, the sidecar decodes it.
    kubectl_ok(
        &[
            "create",
            "secret",
            "generic",
            "redis",
            "-n",
            &ns.0,
            &format!("--from-literal=host={redis}"),
        ],
        None,
    );
    let operator = Operator::start(&["--disable-leader-election"]).await;
    let sidecar = Sidecar::start(&ns.0, "orders", &operator).await;
    assert!(sidecar.component_names().await.is_empty());
    let tag = std::process::id();

    let component = |prefix: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cache\n  namespace: {}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    secretKeyRef:\n      name: redis\n      key: host\n  - name: keyPrefix\n    value: {prefix}\n",
            ns.0
        )
    };
    apply(&component("none"));
    let key1 = format!("k8s-created-{tag}");
    let took = eventually(
        Duration::from_secs(2),
        "the new component is usable",
        || async { sidecar.save("cache", &key1, "one").await.0 == 204 },
    )
    .await;
    println!("component created → usable in {took:?}");
    assert_eq!(redis_hget(&key1), "\"one\"", "written to the real Redis");
    assert_eq!(sidecar.component_names().await, ["cache"]);

    // A change takes effect in the running sidecar: the key prefix becomes the store name.
    apply(&component("name"));
    let key2 = format!("k8s-updated-{tag}");
    let took = eventually(
        Duration::from_secs(2),
        "the changed component is used",
        || async {
            sidecar.save("cache", &key2, "two").await;
            redis_hget(&format!("cache||{key2}")) == "\"two\""
        },
    )
    .await;
    println!("component updated → in effect in {took:?}");

    kubectl_ok(&["delete", "component", "cache", "-n", &ns.0], None);
    let took = eventually(
        Duration::from_secs(2),
        "the deleted component is gone",
        || async {
            let (status, body) = sidecar.save("cache", "x", "y").await;
            status != 204 && body.contains("ERR_STATE_STORE_NOT")
        },
    )
    .await;
    println!("component deleted → gone in {took:?}");
    assert!(sidecar.component_names().await.is_empty());
    assert!(
        sidecar.process.log().contains("Component removed: cache"),
        "{}",
        sidecar.process.log()
    );
}

fn in_memory(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  type: state.in-memory\n  version: v1\n  metadata: []\n"
    )
}

#[tokio::test]
async fn a_sidecar_never_receives_another_namespaces_resources() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let (a, b) = (Namespace::new("tenant-a"), Namespace::new("tenant-b"));
    apply(&in_memory("a-store", &a.0));
    apply(&in_memory("b-store", &b.0));
    let operator = Operator::start(&["--disable-leader-election"]).await;
    let sidecar = Sidecar::start(&a.0, "reader", &operator).await;
    assert_eq!(sidecar.component_names().await, ["a-store"]);
    let (status, body) = sidecar.save("b-store", "k", "v").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ERR_STATE_STORE_NOT_FOUND"), "{body}");

    // Changes in the other namespace are not streamed either.
    apply(&in_memory("b-late", &b.0));
    apply(&in_memory("a-late", &a.0));
    eventually(Duration::from_secs(2), "a-late arrives", || async {
        sidecar.component_names().await == ["a-late", "a-store"]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sidecar.component_names().await, ["a-late", "a-store"]);
}

#[tokio::test]
async fn invalid_components_are_refused_or_reported_and_the_operator_stays_up() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let ns = Namespace::new("invalid");
    let operator = Operator::start(&["--disable-leader-election"]).await;

    // No spec.type: the CRD schema refuses it.
    let out = kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: typeless\n  namespace: {}\nspec:\n  version: v1\n  metadata: []\n",
            ns.0
        )),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.type"), "{err}");

    // Well-formed, but pointing at a Secret that does not exist: a Warning Event.
    apply(&format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: broken\n  namespace: {}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisPassword\n    secretKeyRef:\n      name: nowhere\n      key: password\n",
        ns.0
    ));
    eventually(
        Duration::from_secs(10),
        "a SecretNotFound event",
        || async {
            let reasons = kubectl_ok(
                &[
                    "get",
                    "events",
                    "-n",
                    &ns.0,
                    "--field-selector",
                    "involvedObject.name=broken",
                    "-o",
                    "jsonpath={.items[*].reason}",
                ],
                None,
            );
            reasons.contains("SecretNotFound")
        },
    )
    .await;
    // A sidecar in that namespace parks the component instead of starting it half-configured.
    let sidecar = Sidecar::start(&ns.0, "careful", &operator).await;
    assert!(sidecar.component_names().await.is_empty());
    let mut operator = operator;
    assert!(
        operator.process.try_exit().is_none(),
        "the operator is still running:\n{}",
        operator.process.log()
    );
}

fn deployment(name: &str, ns: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n      annotations:\n{annotations}    spec:\n      containers:\n      - name: app\n        image: example.invalid/app:1\n"
    )
}

fn service(ns: &str, name: &str) -> Option<Value> {
    let out = kubectl(&["get", "service", name, "-n", ns, "-o", "json"], None);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[tokio::test]
async fn annotated_workloads_get_a_dapr_service_until_the_annotation_goes() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let ns = Namespace::new("services");
    let _operator = Operator::start(&["--disable-leader-election"]).await;
    apply(&deployment(
        "web",
        &ns.0,
        "        dapr.io/enabled: \"true\"\n        dapr.io/app-id: shop\n",
    ));
    eventually(Duration::from_secs(10), "shop-dapr appears", || async {
        service(&ns.0, "shop-dapr").is_some()
    })
    .await;
    let svc = service(&ns.0, "shop-dapr").expect("service");
    assert_eq!(svc["spec"]["clusterIP"], "None");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    let ports: Vec<(String, i64, i64)> = svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["port"].as_i64().unwrap_or(0),
                p["targetPort"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("dapr-http".to_string(), 80, 3500),
            ("dapr-grpc".to_string(), 50001, 50001),
            ("dapr-internal".to_string(), 50002, 50002),
            ("dapr-metrics".to_string(), 9090, 9090),
        ]
    );
    assert_eq!(
        svc["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    assert_eq!(svc["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(svc["metadata"]["ownerReferences"][0]["name"], "web");

    // The controller-manager turned the Deployment into a Pod (Pending: no kubelet here).
    eventually(
        Duration::from_secs(20),
        "the Deployment's Pod exists",
        || async {
            !kubectl_ok(
                &["get", "pods", "-n", &ns.0, "-l", "app=web", "-o", "name"],
                None,
            )
            .trim()
            .is_empty()
        },
    )
    .await;

    kubectl_ok(
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            &ns.0,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/template/metadata/annotations/dapr.io~1enabled"}]"#,
        ],
        None,
    );
    eventually(Duration::from_secs(10), "shop-dapr goes away", || async {
        service(&ns.0, "shop-dapr").is_none()
    })
    .await;

    // StatefulSets too; the app id defaults to the workload's name.
    apply(&format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: ledger\n  namespace: {}\nspec:\n  serviceName: ledger\n  selector:\n    matchLabels:\n      app: ledger\n  template:\n    metadata:\n      labels:\n        app: ledger\n      annotations:\n        dapr.io/enabled: \"true\"\n    spec:\n      containers:\n      - name: app\n        image: example.invalid/app:1\n",
        ns.0
    ));
    eventually(Duration::from_secs(10), "ledger-dapr appears", || async {
        service(&ns.0, "ledger-dapr").is_some()
    })
    .await;
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_dead_leader_is_replaced_within_the_lease() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let ns = Namespace::new("leader");
    const LEASE_SECS: u64 = 4;
    let lease = LEASE_SECS.to_string();
    let args = [
        "--leader-election-namespace",
        &ns.0,
        "--leader-election-lease-duration",
        &lease,
        "--watch-namespace",
        &ns.0,
    ];
    let mut replicas = vec![Operator::start(&args).await, Operator::start(&args).await];
    let started = Instant::now();
    let leader = loop {
        let mut leading = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.metric("dapr_operator_is_leader").await == Some(1) {
                leading.push(i);
            }
        }
        if leading.len() == 1 {
            break leading[0];
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no single leader: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = leader;
    let other = 1 - first;

    apply(&deployment(
        "one",
        &ns.0,
        "        dapr.io/enabled: \"true\"\n",
    ));
    eventually(Duration::from_secs(10), "one-dapr appears", || async {
        service(&ns.0, "one-dapr").is_some()
    })
    .await;
    assert_eq!(
        replicas[first]
            .metric("dapr_operator_service_created_total")
            .await,
        Some(1)
    );
    assert_eq!(
        replicas[other]
            .metric("dapr_operator_service_created_total")
            .await,
        Some(0),
        "the follower does not reconcile"
    );

    // Kill the leader outright (no chance to release the Lease).
    replicas[first].process.kill();
    let killed = Instant::now();
    apply(&deployment(
        "two",
        &ns.0,
        "        dapr.io/enabled: \"true\"\n",
    ));
    let survivor = &replicas[other];
    eventually(
        Duration::from_secs(LEASE_SECS + 4),
        "the survivor takes over and reconciles",
        || async { service(&ns.0, "two-dapr").is_some() },
    )
    .await;
    let handover = killed.elapsed();
    println!("leader killed → new leader reconciled in {handover:?} (lease {LEASE_SECS}s)");
    assert_eq!(survivor.metric("dapr_operator_is_leader").await, Some(1));
    assert!(
        handover <= Duration::from_secs(LEASE_SECS + 2),
        "hand-over took {handover:?}, lease is {LEASE_SECS}s"
    );
    replicas.clear();
}

#[tokio::test]
async fn dapr_style_example_manifests_apply_and_keep_every_field() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let ns = Namespace::new("examples");
    let n = &ns.0;
    let manifests = [
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\n  namespace: {n}\nspec:\n  type: state.redis\n  version: v1\n  initTimeout: 10s\n  ignoreErrors: true\n  metadata:\n  - name: redisHost\n    value: redis-master.default.svc.cluster.local:6379\n  - name: redisPassword\n    secretKeyRef:\n      name: redis\n      key: redis-password\n  - name: actorStateStore\n    value: true\n  - name: maxRetries\n    value: 3\nauth:\n  secretStore: kubernetes\nscopes:\n- orders\n- checkout\n"
        ),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: appconfig\n  namespace: {n}\nspec:\n  tracing:\n    samplingRate: \"1\"\n    zipkin:\n      endpointAddress: http://zipkin.default.svc.cluster.local:9411/api/v2/spans\n  metric:\n    enabled: true\n  features:\n  - name: SchedulerReminders\n    enabled: true\n  accessControl:\n    defaultAction: deny\n    trustDomain: public\n    policies:\n    - appId: checkout\n      defaultAction: allow\n      trustDomain: public\n      namespace: {n}\n      operations:\n      - name: /orders/*\n        httpVerb: [POST, GET]\n        action: deny\n  nameResolution:\n    component: sqlite\n    version: v1\n    configuration:\n      connectionString: /tmp/nr.db\n"
        ),
        format!(
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: order-pub-sub\n  namespace: {n}\nspec:\n  topic: orders\n  routes:\n    rules:\n    - match: event.type == \"widget\"\n      path: /widgets\n    default: /orders\n  pubsubname: pubsub\n  deadLetterTopic: poisoned\n  bulkSubscribe:\n    enabled: true\n    maxMessagesCount: 100\n    maxAwaitDurationMs: 40\nscopes:\n- orderprocessing\n"
        ),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: myresiliency\n  namespace: {n}\nscopes:\n- checkout\nspec:\n  policies:\n    timeouts:\n      general: 5s\n    retries:\n      retryForever:\n        policy: exponential\n        maxInterval: 15s\n        maxRetries: -1\n        matching:\n          httpStatusCodes: \"429,500-504\"\n          gRPCStatusCodes: \"1-4,8-11,13,14\"\n    circuitBreakers:\n      simpleCB:\n        maxRequests: 1\n        timeout: 30s\n        trip: consecutiveFailures >= 5\n  targets:\n    apps:\n      appB:\n        timeout: general\n        retry: retryForever\n        circuitBreaker: simpleCB\n    actors:\n      myActorType:\n        timeout: general\n        retry: retryForever\n        circuitBreaker: simpleCB\n        circuitBreakerScope: both\n        circuitBreakerCacheSize: 5000\n    components:\n      statestore1:\n        outbound:\n          timeout: general\n          retry: retryForever\n          circuitBreaker: simpleCB\n"
        ),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: github\n  namespace: {n}\nspec:\n  baseUrl: https://api.github.com\n  headers:\n  - name: Accept-Language\n    value: en-US\n  - name: Authorization\n    secretKeyRef:\n      name: github-token\n      key: token\n"
        ),
    ];
    for m in &manifests {
        apply(m);
    }
    let get = |kind: &str, name: &str| -> Value {
        serde_json::from_str(&kubectl_ok(
            &["get", kind, name, "-n", n, "-o", "json"],
            None,
        ))
        .expect("json")
    };
    let c = get("component", "statestore");
    assert_eq!(
        c["spec"]["metadata"][2]["value"], true,
        "non-string values kept"
    );
    assert_eq!(c["spec"]["metadata"][3]["value"], 3);
    assert_eq!(c["auth"]["secretStore"], "kubernetes");
    assert_eq!(c["scopes"], json!(["orders", "checkout"]));
    let cfg = get("configuration", "appconfig");
    assert_eq!(
        cfg["spec"]["accessControl"]["policies"][0]["operations"][0]["httpVerb"],
        json!(["POST", "GET"])
    );
    assert_eq!(
        cfg["spec"]["nameResolution"]["configuration"]["connectionString"],
        "/tmp/nr.db"
    );
    let sub = get("subscriptions.v2alpha1.dapr.io", "order-pub-sub");
    assert_eq!(sub["spec"]["routes"]["rules"][0]["path"], "/widgets");
    assert_eq!(sub["scopes"], json!(["orderprocessing"]));
    let res = get("resiliency", "myresiliency");
    assert_eq!(
        res["spec"]["targets"]["components"]["statestore1"]["outbound"]["retry"],
        "retryForever"
    );
    let ep = get("httpendpoint", "github");
    assert_eq!(ep["spec"]["headers"][1]["secretKeyRef"]["key"], "token");
}

/// A standalone `sentry` from the same build, with a fresh bundle in `dir`.
/// A Sentry in Kubernetes mode for the control plane in `dapr-system` (the namespace of
/// the operator's identity): its bundle in the `dapr-trust-bundle` Secret, callers
/// checked by TokenReview. Returns it, its port and the trust anchors it published.
async fn start_kubernetes_sentry(dir: &std::path::Path) -> (Process, u16, String) {
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let sentry = test_support::sentry::start(
        &dir.join("creds"),
        None,
        &["--mode", "kubernetes", "--kubeconfig", &kubeconfig],
    )
    .await;
    let ca = kubectl_ok(
        &[
            "get",
            "configmap",
            "dapr-trust-bundle",
            "-n",
            "dapr-system",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        None,
    );
    (sentry.process, sentry.port, ca)
}

/// A Pod (never run) for `service_account` in `namespace`, and a token bound to it with
/// Sentry's audience, written to a file: what the kubelet would project.
fn bound_token_file(
    dir: &std::path::Path,
    namespace: &str,
    service_account: &str,
    pod: &str,
    app_id: &str,
) -> String {
    let _ = kubectl(
        &["create", "serviceaccount", service_account, "-n", namespace],
        None,
    );
    apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {namespace}\n  annotations:\n    dapr.io/app-id: {app_id}\nspec:\n  serviceAccountName: {service_account}\n  containers:\n  - name: app\n    image: example.invalid/app:1\n"
    ));
    let token = test_support::bound_token(
        namespace,
        service_account,
        "spiffe://cp.example/ns/dapr-system/dapr-sentry",
        pod,
    );
    let path = dir.join(format!("{namespace}-{pod}.token"));
    std::fs::write(&path, token.trim()).expect("token file");
    path.display().to_string()
}

/// Removes what the Kubernetes-mode Sentry and the operator's Pod left in `dapr-system`.
struct ControlPlaneLeftovers;

impl Drop for ControlPlaneLeftovers {
    fn drop(&mut self) {
        for args in [
            ["delete", "secret", "dapr-trust-bundle"],
            ["delete", "configmap", "dapr-trust-bundle"],
            ["delete", "pod", "dapr-operator-mtls-test"],
        ] {
            let mut all = args.to_vec();
            all.extend(["-n", "dapr-system", "--ignore-not-found"]);
            let _ = kubectl(&all, None);
        }
    }
}

#[tokio::test]
async fn over_mtls_each_sidecar_reads_only_the_namespace_in_its_certificate() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (a, b) = (Namespace::new("mtls-a"), Namespace::new("mtls-b"));
    apply(&in_memory("a-store", &a.0));
    apply(&in_memory("b-store", &b.0));
    let dir = tempfile::tempdir().expect("dir");
    let _leftovers = ControlPlaneLeftovers;
    let (_sentry, sentry_port, ca) = start_kubernetes_sentry(dir.path()).await;
    let anchors = dir.path().join("anchors.crt");
    std::fs::write(&anchors, &ca).expect("anchors");
    let anchors = anchors.display().to_string();
    let sentry_address = format!("127.0.0.1:{sentry_port}");
    let operator_token = bound_token_file(
        dir.path(),
        "dapr-system",
        "dapr-operator",
        "dapr-operator-mtls-test",
        "dapr-operator",
    );
    let operator = Operator::start_with_env(
        &[
            "--disable-leader-election",
            "--sentry-address",
            &sentry_address,
            "--trust-anchors-file",
            &anchors,
            "--control-plane-trust-domain",
            "cp.example",
            "--leader-election-namespace",
            "dapr-system",
        ],
        &[("DAPR_SENTRY_TOKEN_FILE", &operator_token)],
    )
    .await;
    assert!(
        operator
            .process
            .log()
            .contains("mTLS as spiffe://cp.example/ns/dapr-system/dapr-operator"),
        "{}",
        operator.process.log()
    );

    // A sidecar in namespace A loads A's components over mTLS.
    let sidecar = Sidecar::start_with(
        &a.0,
        "secure-reader",
        &operator,
        &[
            "--enable-mtls",
            "--sentry-address",
            &sentry_address,
            "--control-plane-trust-domain",
            "cp.example",
            "--control-plane-namespace",
            "dapr-system",
        ],
        &[
            ("DAPR_TRUST_ANCHORS", &ca),
            (
                "DAPR_SENTRY_TOKEN_FILE",
                &bound_token_file(dir.path(), &a.0, "reader", "secure-reader", "secure-reader"),
            ),
        ],
    )
    .await;
    assert_eq!(sidecar.component_names().await, ["a-store"]);

    // A workload certified for namespace A that asks for B is refused; asking for
    // nothing gets A.
    let roots = security::sentry_client::root_store(&ca).expect("roots");
    let cell = security::SentryClient {
        address: sentry_address.clone(),
        roots: roots.clone(),
        sentry_id: security::SpiffeId::new("cp.example", "dapr-system", "dapr-sentry"),
        app_id: "intruder".into(),
        namespace: a.0.clone(),
        trust_domain: String::new(),
        token: security::SentryToken {
            value: std::fs::read_to_string(bound_token_file(
                dir.path(),
                &a.0,
                "reader",
                "intruder",
                "intruder",
            ))
            .expect("token"),
            validator: proto::sentry::v1::sign_certificate_request::TokenValidator::Kubernetes,
        },
    }
    .start(Duration::from_secs(10))
    .await
    .expect("certificate");
    let operator_id = security::SpiffeId::new("cp.example", "dapr-system", "dapr-operator");
    let config = security::client_config(Some(cell), roots.clone(), move |id| *id == operator_id);
    let channel = security::channel_with_tls(&format!("127.0.0.1:{}", operator.port), config)
        .expect("channel");
    let mut client = proto::operator::v1::operator_client::OperatorClient::new(channel);
    let err = client
        .list_components(proto::operator::v1::ListComponentsRequest {
            namespace: b.0.clone(),
        })
        .await
        .expect_err("another namespace");
    assert_eq!(
        err.code(),
        tonic::Code::PermissionDenied,
        "{}",
        err.message()
    );
    let own = client
        .list_components(proto::operator::v1::ListComponentsRequest {
            namespace: String::new(),
        })
        .await
        .expect("own namespace")
        .into_inner();
    assert_eq!(own.components.len(), 1);
    assert!(String::from_utf8_lossy(&own.components[0]).contains("a-store"));

    // Without a certificate there is no operator API at all.
    let anonymous = security::client_config(None, roots, |_| true);
    let channel = security::channel_with_tls(&format!("127.0.0.1:{}", operator.port), anonymous)
        .expect("channel");
    let refused = proto::operator::v1::operator_client::OperatorClient::new(channel)
        .list_components(proto::operator::v1::ListComponentsRequest {
            namespace: a.0.clone(),
        })
        .await;
    assert!(refused.is_err(), "no client certificate, no components");
}

#[tokio::test]
async fn v1alpha1_subscriptions_convert_through_the_operators_webhook() {
    require_cluster();
    let _turn = turn().lock().await;
    ensure_crds();
    let ns = Namespace::new("convert");
    let _operator = Operator::start(&["--disable-leader-election"]).await;
    // The operator patched the CRD to reach its webhook; a v1alpha1 write needs it.
    let manifest = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata:\n  name: legacy\n  namespace: {}\nspec:\n  pubsubname: pubsub\n  topic: orders\n  route: /orders\nscopes:\n- checkout\n",
        ns.0
    );
    eventually(
        Duration::from_secs(10),
        "a v1alpha1 Subscription is accepted",
        || async {
            kubectl(&["apply", "-f", "-"], Some(&manifest))
                .status
                .success()
        },
    )
    .await;
    let get = |version: &str| -> Value {
        serde_json::from_str(&kubectl_ok(
            &[
                "get",
                &format!("subscriptions.{version}.dapr.io"),
                "legacy",
                "-n",
                &ns.0,
                "-o",
                "json",
            ],
            None,
        ))
        .expect("json")
    };
    let v2 = get("v2alpha1");
    assert_eq!(v2["spec"]["routes"]["default"], "/orders", "{v2}");
    assert_eq!(v2["scopes"], json!(["checkout"]));
    let v1 = get("v1alpha1");
    assert_eq!(v1["spec"]["route"], "/orders", "{v1}");
}
