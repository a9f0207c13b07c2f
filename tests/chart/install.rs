//! The user's journey on a real API server and controller-manager, with a real `helm`:
//! `helm install` the chart, annotate a Deployment, `kubectl apply` a Component, and the
//! injected sidecar runs, gets its certificate from Sentry through the KUBERNETES
//! validator, loads the Component from the operator, serves state to the official Python
//! SDK and follows a changed Component; then `helm upgrade` to HA and `helm uninstall`.
//!
//! There is no kubelet, no scheduler and no cluster network, so the test plays them: it
//! starts each container the API server stored (the chart's Sentry, operator and
//! injector, then the injected `daprd`) as a local process with the command, arguments
//! and environment of its Pod, and with its volumes (the projected ServiceAccount token,
//! from a TokenRequest bound to that Pod, and the trust bundle ConfigMap) at their mount
//! paths in a private mount namespace. Services are addresses of their own on loopback
//! (scripts/in-netns.sh maps their names), so Sentry and the operator both listen on the
//! Service port 443, and the sidecar dials the addresses the injector wrote unchanged.
//! Only the control plane's health and metrics ports move to free ones, as they would all
//! be the same port on one host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use test_support::{Process, deployment, free_port, helm_ok, kubectl, kubectl_ok};

const CP: &str = "dapr-system";

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/dapr")
        .display()
        .to_string()
}

/// Undoes what the test made in the shared cluster, even when it fails.
struct Cleanup {
    apps: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = test_support::helm(&["uninstall", "dapr", "-n", CP]);
        // The operator's leader Lease is its own, not the chart's.
        let _ = kubectl(
            &[
                "delete",
                "lease",
                "dapr-operator",
                "-n",
                CP,
                "--ignore-not-found",
            ],
            None,
        );
        let _ = kubectl(&["delete", "namespace", &self.apps, "--wait=false"], None);
    }
}

fn get_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&all, None)).expect("kubectl json")
}

/// The Pods matching `selector`, once there are at least `n`.
async fn pods(namespace: &str, selector: &str, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let list = get_json(&["get", "pods", "-n", namespace, "-l", selector]);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{n} Pod(s) {selector} in {namespace}: the controller-manager made {}",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {pod:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Sets `flag` to `value` in a command line, in whichever form it is there.
fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    let eq = format!("{flag}=");
    if let Some(i) = args.iter().position(|a| a == flag) {
        args[i + 1] = value.to_string();
    } else if let Some(i) = args.iter().position(|a| a.starts_with(&eq)) {
        args[i] = format!("{flag}={value}");
    } else {
        args.extend([flag.to_string(), value.to_string()]);
    }
}

/// A kubeconfig that talks to the API server as `service_account` of the control plane,
/// so that the chart's RBAC is what the control plane gets.
fn service_account_kubeconfig(dir: &Path, service_account: &str) -> String {
    let token = kubectl_ok(&["create", "token", service_account, "-n", CP], None);
    let server = std::env::var("KUBE_APISERVER_URL").expect("KUBE_APISERVER_URL");
    let path = dir.join(format!("{service_account}.kubeconfig"));
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: {service_account}\n  user:\n    token: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: {service_account}\ncurrent-context: test\n",
        token.trim()
    );
    std::fs::write(&path, config).expect("kubeconfig");
    path.display().to_string()
}

/// The container's environment as the kubelet resolves it.
fn environment(pod: &Value, c: &Value) -> Vec<(String, String)> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut env = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("env name").to_string();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod["metadata"]["name"].as_str().unwrap_or_default().into(),
                "metadata.namespace" => namespace.into(),
                "status.podIP" | "status.hostIP" => "127.0.0.1".into(),
                other => panic!("fieldRef {other} is not played by this kubelet"),
            }
        } else if let Some(secret) = e["valueFrom"]["secretKeyRef"].as_object() {
            let name = secret["name"].as_str().expect("secret name");
            let key = secret["key"].as_str().expect("secret key");
            let data = kubectl_ok(
                &[
                    "get",
                    "secret",
                    name,
                    "-n",
                    namespace,
                    "-o",
                    &format!("jsonpath={{.data.{}}}", key.replace('.', "\\.")),
                ],
                None,
            );
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .expect("secret base64");
            String::from_utf8(bytes).expect("secret text")
        } else {
            panic!("env {e} is not played by this kubelet");
        };
        env.push((name, value));
    }
    env
}

/// The files the container's volumes put at its mount paths: projected ServiceAccount
/// tokens (from a TokenRequest bound to the Pod, with the volume's audience) and
/// ConfigMaps.
fn volume_files(pod: &Value, c: &Value) -> Vec<(String, String)> {
    let namespace = pod["metadata"]["namespace"].as_str().expect("namespace");
    let pod_name = pod["metadata"]["name"].as_str().expect("pod name");
    let service_account = pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default");
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut files = Vec::new();
    for mount in c["volumeMounts"].as_array().into_iter().flatten() {
        let at = mount["mountPath"].as_str().expect("mountPath");
        let Some(volume) = volumes.iter().find(|v| v["name"] == mount["name"]) else {
            panic!("the mount {mount} has no volume");
        };
        for source in volume["projected"]["sources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let token = &source["serviceAccountToken"];
            if token.is_object() {
                let audience = token["audience"]
                    .as_str()
                    .unwrap_or("https://kubernetes.default.svc.cluster.local");
                let path = token["path"].as_str().expect("token path");
                files.push((
                    format!("{at}/{path}"),
                    test_support::bound_token(namespace, service_account, audience, pod_name),
                ));
            }
        }
        if let Some(map) = volume["configMap"]["name"].as_str() {
            let data = get_json(&["get", "configmap", map, "-n", namespace]);
            for (key, value) in data["data"].as_object().into_iter().flatten() {
                files.push((format!("{at}/{key}"), value.as_str().unwrap_or("").into()));
            }
        }
    }
    files
}

/// A container of a Pod the API server stored, started as a kubelet would start it.
struct Kubelet {
    process: Process,
    _files: tempfile::TempDir,
}

impl Kubelet {
    fn start(pod: &Value, name: &str, flags: &[(&str, &str)]) -> Kubelet {
        let c = container(pod, name);
        // Without a command the image's ENTRYPOINT runs; our daprd image has none (see
        // the Dockerfile), so the first argument is the program, as in Dapr's.
        let mut line = strings(&c["command"]);
        line.extend(strings(&c["args"]));
        let program = line
            .first()
            .expect("the container names its program")
            .trim_start_matches('/')
            .to_string();
        let mut args: Vec<String> = line[1..].to_vec();
        for (flag, value) in flags {
            set_flag(&mut args, flag, value);
        }
        let env = environment(pod, c);
        let files = tempfile::tempdir().expect("dir");
        // A private mount namespace with a fresh /run (/var/run's target), where the
        // volumes land at their mount paths; then the program itself, same pid.
        let mut script = String::from("set -e; mount -t tmpfs tmpfs /run; ");
        for (i, (path, contents)) in volume_files(pod, c).into_iter().enumerate() {
            let source = files.path().join(format!("f{i}"));
            std::fs::write(&source, contents).expect("volume file");
            let dir = Path::new(&path).parent().expect("mount dir").display();
            script.push_str(&format!(
                "mkdir -p '{dir}'; cp '{}' '{path}'; ",
                source.display()
            ));
        }
        script.push_str("exec \"$0\" \"$@\"");
        let mut line = vec![
            "--mount".to_string(),
            "--propagation".into(),
            "private".into(),
            "sh".into(),
            "-c".into(),
            script,
            test_support::binary(&program).display().to_string(),
        ];
        line.extend(args);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Kubelet {
            process: Process::spawn_with_only(Path::new("unshare"), &line, &env),
            _files: files,
        }
    }
}

async fn wait_healthy(k: &mut Kubelet, port: u16, status: u16) {
    k.process
        .wait_answers(
            &format!("http://127.0.0.1:{port}/healthz"),
            status,
            Duration::from_secs(60),
        )
        .await;
}

fn redis_has(port: &str, key: &str) -> bool {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", port, "exists", key])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim() == "1"
}

fn statestore(redis_port: &str, key_prefix: Option<&str>) -> String {
    let mut metadata = vec![
        json!({"name": "redisHost", "value": format!("127.0.0.1:{redis_port}")}),
        json!({"name": "redisPassword", "value": ""}),
    ];
    if let Some(p) = key_prefix {
        metadata.push(json!({"name": "keyPrefix", "value": p}));
    }
    json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "statestore"},
        "spec": {"type": "state.redis", "version": "v1", "metadata": metadata},
    })
    .to_string()
}

fn bare_pod(name: &str, annotations: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
    })
    .to_string()
}

fn python() -> PathBuf {
    let cache = std::env::var("RDAPR_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/rdapr", std::env::var("HOME").unwrap_or_default()));
    PathBuf::from(cache).join("venv/bin/python")
}

fn replicas(kind: &str, name: &str) -> String {
    kubectl_ok(
        &[
            "get",
            kind,
            name,
            "-n",
            CP,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    )
}

#[tokio::test]
async fn helm_install_then_an_annotated_deployment_runs_its_injected_sidecar() {
    for var in ["KUBECONFIG", "KUBE_APISERVER_URL", "HELM_BIN", "REDIS_PORT"] {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: run scripts/test.sh (it builds helm and starts the cluster and Redis)"
        );
    }
    let redis_port = std::env::var("REDIS_PORT").unwrap_or_default();
    let tag = std::process::id().to_string();
    let apps = format!("helm-apps-{tag}");
    let _cleanup = Cleanup { apps: apps.clone() };
    kubectl_ok(&["create", "namespace", &apps], None);
    kubectl_ok(
        &[
            "label",
            "namespace",
            &apps,
            &format!("rdapr-helm-test={tag}"),
        ],
        None,
    );

    // helm install, the webhook pointed at the injector this test runs, refusing Pods
    // when it cannot be reached, for this test's namespace only (the cluster is shared).
    let injector_port = free_port();
    let chart = chart();
    let installed = helm_ok(&[
        "install",
        "dapr",
        &chart,
        "-n",
        CP,
        "--create-namespace",
        "--set",
        &format!(
            "dapr_sidecar_injector.webhookUrl=https://dapr-sidecar-injector.dapr-system.svc:{injector_port}/mutate"
        ),
        "--set",
        "dapr_sidecar_injector.webhookFailurePolicy=Fail",
        "--set",
        "global.mtls.workloadCertTTL=1h",
        "--set-json",
        &format!(
            r#"dapr_sidecar_injector.namespaceSelector={{"matchLabels":{{"rdapr-helm-test":"{tag}"}}}}"#
        ),
    ]);
    assert!(installed.contains("STATUS: deployed"), "{installed}");

    let sentry_pod = pods(CP, "app=dapr-sentry", 1).await.remove(0);
    let operator_pod = pods(CP, "app=dapr-operator", 1).await.remove(0);
    let injector_pod = pods(CP, "app=dapr-sidecar-injector", 1).await.remove(0);
    pods(CP, "app=dapr-placement-server", 1).await;
    let dir = tempfile::tempdir().expect("dir");

    // Sentry, on the dapr-sentry Service's address, fills in the chart's empty bundle.
    let (healthz, metrics) = (free_port(), free_port());
    let kubeconfig = service_account_kubeconfig(dir.path(), "dapr-sentry");
    let mut sentry = Kubelet::start(
        &sentry_pod,
        "dapr-sentry",
        &[
            ("--port", "443"),
            ("--listen-address", "127.0.0.2"),
            ("--healthz-port", &healthz.to_string()),
            ("--healthz-listen-address", "127.0.0.1"),
            ("--metrics-port", &metrics.to_string()),
            ("--metrics-listen-address", "127.0.0.1"),
            ("--kubeconfig", &kubeconfig),
        ],
    );
    wait_healthy(&mut sentry, healthz, 200).await;
    assert!(
        sentry
            .process
            .log()
            .contains("workload certificates live 3600s"),
        "Sentry signs for the daprsystem Configuration's workloadCertTTL: {}",
        sentry.process.log()
    );
    let bundle = get_json(&["get", "secret", "dapr-trust-bundle", "-n", CP]);
    for key in ["ca.crt", "issuer.crt", "issuer.key"] {
        assert!(
            bundle["data"][key].is_string(),
            "{key}: {}",
            sentry.process.log()
        );
    }
    assert_eq!(
        bundle["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
        "the chart's Secret was filled in, not replaced"
    );
    let anchors = kubectl_ok(
        &[
            "get",
            "configmap",
            "dapr-trust-bundle",
            "-n",
            CP,
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        None,
    );
    assert!(anchors.contains("BEGIN CERTIFICATE"), "{anchors:?}");

    // The operator, on the dapr-api Service's address, with its identity from Sentry.
    let (healthz, metrics) = (free_port(), free_port());
    let kubeconfig = service_account_kubeconfig(dir.path(), "dapr-operator");
    let mut operator = Kubelet::start(
        &operator_pod,
        "dapr-operator",
        &[
            ("--port", "443"),
            ("--api-listen-address", "127.0.0.3"),
            ("--healthz-port", &healthz.to_string()),
            ("--healthz-listen-address", "127.0.0.1"),
            ("--metrics-port", &metrics.to_string()),
            ("--metrics-listen-address", "127.0.0.1"),
            ("--webhook-server-port", "0"),
            ("--kubeconfig", &kubeconfig),
        ],
    );
    wait_healthy(&mut operator, healthz, 200).await;
    let op = &operator;
    test_support::eventually(
        Duration::from_secs(30),
        "the operator's mTLS",
        || async move {
            op.process
                .log()
                .contains("mTLS as spiffe://cluster.local/ns/dapr-system/dapr-operator")
        },
    )
    .await;

    // The injector, where the webhook URL points, keeps the caBundle at the anchors.
    let healthz = free_port();
    let kubeconfig = service_account_kubeconfig(dir.path(), "dapr-injector");
    let mut injector = Kubelet::start(
        &injector_pod,
        "dapr-sidecar-injector",
        &[
            ("--port", &injector_port.to_string()),
            ("--listen-address", "127.0.0.1"),
            ("--healthz-port", &healthz.to_string()),
            ("--healthz-listen-address", "127.0.0.1"),
            ("--kubeconfig", &kubeconfig),
        ],
    );
    wait_healthy(&mut injector, healthz, 200).await;
    let expected = base64::engine::general_purpose::STANDARD.encode(&anchors);
    let expected = &expected;
    test_support::eventually(
        Duration::from_secs(30),
        "the webhook's caBundle",
        || async move {
            kubectl_ok(
                &[
                    "get",
                    "mutatingwebhookconfiguration",
                    "dapr-sidecar-injector",
                    "-o",
                    "jsonpath={.webhooks[0].clientConfig.caBundle}",
                ],
                None,
            )
            .trim()
                == expected.as_str()
        },
    )
    .await;

    // The app's resources, then the annotated Deployment and an unannotated one.
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(
            &json!({
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Configuration",
                "metadata": {"name": "appconfig"},
                "spec": {"features": [{"name": "HelmJourney", "enabled": true}]},
            })
            .to_string(),
        ),
    );
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&statestore(&redis_port, None)),
    );
    let app_port = free_port();
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&deployment(
            "orders",
            &json!({
                "dapr.io/enabled": "true",
                "dapr.io/app-id": "orders",
                "dapr.io/app-port": app_port.to_string(),
                "dapr.io/config": "appconfig",
                "dapr.io/log-level": "debug",
                "dapr.io/sidecar-memory-limit": "256Mi",
            }),
        )),
    );
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&deployment("plain", &json!({}))),
    );
    let orders = pods(&apps, "app=orders", 1).await.remove(0);
    let plain = pods(&apps, "app=plain", 1).await.remove(0);
    let names = |pod: &Value| -> Vec<String> {
        pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(names(&plain), ["app"], "an unannotated Pod is untouched");
    assert_eq!(names(&orders), ["app", "daprd"]);
    let daprd = container(&orders, "daprd");
    assert_eq!(daprd["image"], "ghcr.io/rdapr/daprd:0.1.0");
    let line = strings(&daprd["args"]).join(" ");
    for expected in [
        "--mode kubernetes",
        "--app-id orders",
        &format!("--app-port {app_port}"),
        "--control-plane-address dapr-api.dapr-system.svc.cluster.local:443",
        "--sentry-address dapr-sentry.dapr-system.svc.cluster.local:443",
        "--placement-host-address dapr-placement-server.dapr-system.svc.cluster.local:50005",
        "--config appconfig",
        "--log-level debug",
        "--enable-mtls",
    ] {
        assert!(line.contains(expected), "{expected} in {line}");
    }
    let env: Vec<(String, String)> = environment(&orders, daprd);
    let value = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(value("NAMESPACE").as_deref(), Some(apps.as_str()));
    assert_eq!(
        value("DAPR_TRUST_ANCHORS").as_deref(),
        Some(anchors.as_str())
    );
    assert_eq!(
        value("POD_NAME").as_deref(),
        orders["metadata"]["name"].as_str()
    );
    assert_eq!(daprd["readinessProbe"]["httpGet"]["port"], 3501);
    assert_eq!(daprd["readinessProbe"]["httpGet"]["path"], "/v1.0/healthz");
    assert_eq!(daprd["livenessProbe"]["tcpSocket"]["port"], 3501);
    assert_eq!(daprd["resources"]["limits"]["memory"], "256Mi");
    let token = orders["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "dapr-identity-token")
        .expect("the Sentry token volume");
    assert_eq!(
        token["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "spiffe://cluster.local/ns/dapr-system/dapr-sentry"
    );
    let app_env = strings(&Value::Array(
        container(&orders, "app")["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["name"].clone())
            .collect(),
    ));
    assert!(
        app_env.contains(&"DAPR_HTTP_PORT".to_string()),
        "{app_env:?}"
    );

    // Malformed annotations: a bad port is admitted with a warning, a bad app id refused.
    let warned = kubectl(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&bare_pod(
            "bad-port",
            json!({"dapr.io/enabled": "true", "dapr.io/app-id": "bad-port", "dapr.io/app-port": "eighty"}),
        )),
    );
    assert!(warned.status.success());
    let said = String::from_utf8_lossy(&warned.stderr);
    assert!(
        said.contains("Warning") && said.contains("dapr.io/app-port"),
        "{said}"
    );
    let refused = kubectl(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&bare_pod(
            "bad-id",
            json!({"dapr.io/enabled": "true", "dapr.io/app-id": "Bad_ID"}),
        )),
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("invalid app id"), "{said}");

    // A Pod asking for injected pluggable components gets the containers of the
    // Components scoped to it (the injector lists them with its own RBAC).
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(
            &json!({
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "pc-store", "annotations": {
                    "dapr.io/component-container": r#"{"image": "example/pc:1"}"#,
                }},
                "spec": {"type": "state.my-pc", "version": "v1", "metadata": []},
                "scopes": ["with-pc"],
            })
            .to_string(),
        ),
    );
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&bare_pod(
            "with-pc",
            json!({
                "dapr.io/enabled": "true",
                "dapr.io/app-id": "with-pc",
                "dapr.io/inject-pluggable-components": "true",
            }),
        )),
    );
    let with_pc = get_json(&["get", "pod", "with-pc", "-n", &apps]);
    assert_eq!(names(&with_pc), ["app", "pc-store", "daprd"]);

    // The injected sidecar really runs, next to a local app.
    let _app = Process::spawn(
        &python(),
        &[
            "-m",
            "http.server",
            &app_port.to_string(),
            "--bind",
            "127.0.0.1",
        ],
        &[],
    );
    let mut sidecar = Kubelet::start(&orders, "daprd", &[]);
    sidecar
        .process
        .wait_answers(
            "http://127.0.0.1:3501/v1.0/healthz",
            204,
            Duration::from_secs(60),
        )
        .await;
    let log = sidecar.process.log();
    assert!(
        log.contains(&format!("spiffe://public/ns/{apps}/orders")),
        "the certificate from Sentry: {log}"
    );
    let sdk = std::process::Command::new(python())
        .args([
            "-c",
            "from dapr.clients import DaprClient\n\
             with DaprClient() as d:\n\
             \x20   d.save_state('statestore', 'k1', 'from-the-sdk')\n\
             \x20   print(d.get_state('statestore', 'k1').data.decode())\n",
        ])
        .env("DAPR_GRPC_PORT", "50001")
        .env("DAPR_HTTP_PORT", "3500")
        .output()
        .expect("python");
    assert!(
        sdk.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&sdk.stderr),
        sidecar.process.log()
    );
    assert_eq!(String::from_utf8_lossy(&sdk.stdout).trim(), "from-the-sdk");
    assert!(
        redis_has(&redis_port, "orders||k1"),
        "the state is in the Redis of the applied Component"
    );
    let metadata: Value = reqwest::get("http://127.0.0.1:3500/v1.0/metadata")
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert!(
        strings(&metadata["enabledFeatures"]).contains(&"HelmJourney".to_string()),
        "the Configuration from the operator: {metadata}"
    );

    // A changed Component is followed without a restart.
    let pid = sidecar.process.pid();
    kubectl_ok(
        &["apply", "-n", &apps, "-f", "-"],
        Some(&statestore(&redis_port, Some("none"))),
    );
    let http = &reqwest::Client::new();
    let port = &redis_port;
    test_support::eventually(
        Duration::from_secs(30),
        "the changed Component",
        || async move {
            let _ = http
                .post("http://127.0.0.1:3500/v1.0/state/statestore")
                .json(&json!([{"key": "k2", "value": "after-the-change"}]))
                .send()
                .await;
            redis_has(port, "k2")
        },
    )
    .await;
    assert!(sidecar.process.try_exit().is_none());
    assert_eq!(sidecar.process.pid(), pid);
    drop(sidecar);

    // helm upgrade to HA, mTLS off: three of every control-plane service, and the
    // injector follows the daprsystem Configuration for the sidecars it adds next.
    helm_ok(&[
        "upgrade",
        "dapr",
        &chart,
        "-n",
        CP,
        "--reuse-values",
        "--set",
        "global.ha.enabled=true",
        "--set",
        "global.mtls.enabled=false",
    ]);
    let apps_ref = &apps;
    test_support::eventually(
        Duration::from_secs(30),
        "a sidecar without mTLS",
        || async move {
            let _ = kubectl(
                &[
                    "delete",
                    "pod",
                    "plain-mtls",
                    "-n",
                    apps_ref,
                    "--wait=false",
                ],
                None,
            );
            let _ = kubectl(
                &[
                    "wait",
                    "--for=delete",
                    "pod/plain-mtls",
                    "-n",
                    apps_ref,
                    "--timeout=10s",
                ],
                None,
            );
            kubectl_ok(
                &["apply", "-n", apps_ref, "-f", "-"],
                Some(&bare_pod(
                    "plain-mtls",
                    json!({"dapr.io/enabled": "true", "dapr.io/app-id": "plain-mtls"}),
                )),
            );
            let pod = get_json(&["get", "pod", "plain-mtls", "-n", apps_ref]);
            !strings(&container(&pod, "daprd")["args"]).contains(&"--enable-mtls".to_string())
        },
    )
    .await;
    for (kind, name) in [
        ("deployment", "dapr-operator"),
        ("deployment", "dapr-sentry"),
        ("deployment", "dapr-sidecar-injector"),
        ("statefulset", "dapr-placement-server"),
    ] {
        assert_eq!(replicas(kind, name), "3", "{kind}/{name}");
    }
    pods(CP, "app=dapr-operator", 3).await;
    pods(CP, "app=dapr-placement-server", 3).await;

    // helm uninstall removes what it installed (the CRDs stay, as Helm keeps them).
    drop(injector);
    drop(operator);
    drop(sentry);
    helm_ok(&["uninstall", "dapr", "-n", CP]);
    for (kind, name, namespaced) in [
        ("deployment", "dapr-operator", true),
        ("deployment", "dapr-sentry", true),
        ("deployment", "dapr-sidecar-injector", true),
        ("statefulset", "dapr-placement-server", true),
        ("service", "dapr-api", true),
        ("serviceaccount", "dapr-sentry", true),
        ("secret", "dapr-trust-bundle", true),
        ("configuration", "daprsystem", true),
        (
            "mutatingwebhookconfiguration",
            "dapr-sidecar-injector",
            false,
        ),
        ("clusterrole", "dapr-operator-admin", false),
        (
            "poddisruptionbudget",
            "dapr-operator-disruption-budget",
            true,
        ),
    ] {
        let mut args = vec!["get", kind, name];
        if namespaced {
            args.extend(["-n", CP]);
        }
        let out = kubectl(&args, None);
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"),
            "{kind}/{name} is left after uninstall"
        );
    }
    kubectl_ok(&["get", "crd", "components.dapr.io"], None);
}
