//! `charts/dapr` as `helm` sees it: `helm lint` is clean, and what `helm template` renders
//! with Dapr's value names (defaults, HA, registry and tag, JSON logs, mTLS trust domain,
//! the sidecar's pull policy, a webhook URL) is what the values say. The flags the chart
//! passes are accepted by our own binaries, and the Dockerfile builds the images the chart
//! names, with the entrypoints the chart runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const NAMESPACE: &str = "dapr-system";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> String {
    root().join("charts/dapr").display().to_string()
}

fn run_helm(args: &[&str]) -> (bool, String) {
    let out = test_support::helm(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The rendered objects, keyed by `Kind/name`.
struct Rendered(BTreeMap<String, Value>);

impl Rendered {
    fn get(&self, kind: &str, name: &str) -> &Value {
        let key = format!("{kind}/{name}");
        self.0.get(&key).unwrap_or_else(|| {
            panic!(
                "{key} is not rendered; have {:?}",
                self.0.keys().collect::<Vec<_>>()
            )
        })
    }

    fn has(&self, kind: &str, name: &str) -> bool {
        self.0.contains_key(&format!("{kind}/{name}"))
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0
            .iter()
            .filter(|(k, _)| k.split('/').next() == Some(kind))
            .map(|(_, v)| v)
            .collect()
    }

    /// Every container of every Deployment and StatefulSet.
    fn containers(&self) -> Vec<&Value> {
        let mut all = Vec::new();
        for kind in ["Deployment", "StatefulSet"] {
            for w in self.of_kind(kind) {
                all.extend(
                    w["spec"]["template"]["spec"]["containers"]
                        .as_array()
                        .into_iter()
                        .flatten(),
                );
            }
        }
        all
    }
}

fn template(extra: &[&str]) -> Rendered {
    let chart = chart();
    let mut args = vec![
        "template",
        "dapr",
        chart.as_str(),
        "--namespace",
        NAMESPACE,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    let out = test_support::helm(&args);
    assert!(
        out.status.success(),
        "helm template {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("helm template output is not YAML: {e}\n{text}"));
    let mut objects = BTreeMap::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let kind = doc["kind"]
            .as_str()
            .expect("every object has a kind")
            .to_string();
        let name = doc["metadata"]["name"]
            .as_str()
            .expect("every object has a name")
            .to_string();
        let key = format!("{kind}/{name}");
        assert!(objects.insert(key.clone(), doc).is_none(), "{key} twice");
    }
    Rendered(objects)
}

fn container<'a>(r: &'a Rendered, kind: &str, name: &str) -> &'a Value {
    &r.get(kind, name)["spec"]["template"]["spec"]["containers"][0]
}

fn args(c: &Value) -> Vec<String> {
    c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// The value after `flag` (`--flag value` or `--flag=value`).
fn flag(c: &Value, name: &str) -> Option<String> {
    let args = args(c);
    let eq = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&eq).map(str::to_string)
        }
    })
}

fn env(c: &Value, name: &str) -> Option<String> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

fn replicas(r: &Rendered, kind: &str, name: &str) -> u64 {
    r.get(kind, name)["spec"]["replicas"]
        .as_u64()
        .unwrap_or_else(|| panic!("{kind}/{name} has no replicas"))
}

const WORKLOADS: [(&str, &str); 4] = [
    ("Deployment", "dapr-operator"),
    ("Deployment", "dapr-sentry"),
    ("Deployment", "dapr-sidecar-injector"),
    ("StatefulSet", "dapr-placement-server"),
];

#[test]
fn helm_lint_is_clean() {
    let (ok, text) = run_helm(&["lint", "--strict", &chart()]);
    assert!(ok, "helm lint --strict:\n{text}");
    assert!(text.contains("0 chart(s) failed"), "{text}");
    assert!(!text.contains("[WARNING]"), "{text}");
    let (ok, text) = run_helm(&[
        "lint",
        "--strict",
        &chart(),
        "--set",
        "global.ha.enabled=true",
        "--set",
        "dapr_placement.cluster.forceInMemoryLog=false",
    ]);
    assert!(ok, "helm lint --strict with HA:\n{text}");
}

#[test]
fn defaults_install_the_whole_control_plane() {
    let r = template(&[]);
    for crd in [
        "components.dapr.io",
        "configurations.dapr.io",
        "httpendpoints.dapr.io",
        "resiliencies.dapr.io",
        "subscriptions.dapr.io",
    ] {
        assert!(r.has("CustomResourceDefinition", crd), "{crd}");
    }
    for sa in [
        "dapr-operator",
        "dapr-sentry",
        "dapr-injector",
        "dapr-placement",
    ] {
        assert_eq!(
            r.get("ServiceAccount", sa)["metadata"]["namespace"],
            NAMESPACE
        );
    }
    for (kind, name) in WORKLOADS {
        assert_eq!(replicas(&r, kind, name), 1, "{kind}/{name}");
        assert!(r.get(kind, name)["spec"]["template"]["spec"]["affinity"].is_null());
    }
    assert!(r.of_kind("PodDisruptionBudget").is_empty());
    let sa = |kind, name| {
        r.get(kind, name)["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        sa("Deployment", "dapr-operator").as_deref(),
        Some("dapr-operator")
    );
    assert_eq!(
        sa("Deployment", "dapr-sidecar-injector").as_deref(),
        Some("dapr-injector")
    );
    assert_eq!(
        sa("StatefulSet", "dapr-placement-server").as_deref(),
        Some("dapr-placement")
    );

    // Services with Dapr's names and ports.
    let port = |name: &str| {
        let p = &r.get("Service", name)["spec"]["ports"][0];
        (p["port"].as_u64(), p["targetPort"].clone())
    };
    assert_eq!(port("dapr-api"), (Some(443), Value::from(6500)));
    assert_eq!(port("dapr-sentry"), (Some(443), Value::from(50001)));
    assert_eq!(
        port("dapr-sidecar-injector"),
        (Some(443), Value::from("https"))
    );
    assert_eq!(port("dapr-webhook"), (Some(443), Value::from(19443)));
    let placement = r.get("Service", "dapr-placement-server");
    assert_eq!(placement["spec"]["clusterIP"], "None", "headless");
    assert_eq!(
        r.get("StatefulSet", "dapr-placement-server")["spec"]["serviceName"],
        "dapr-placement-server"
    );

    // Images: registry/name:tag.
    assert_eq!(
        container(&r, "Deployment", "dapr-operator")["image"],
        "ghcr.io/rdapr/operator:0.1.0"
    );
    let injector = container(&r, "Deployment", "dapr-sidecar-injector");
    assert_eq!(injector["image"], "ghcr.io/rdapr/injector:0.1.0");
    assert_eq!(
        env(injector, "SIDECAR_IMAGE").as_deref(),
        Some("ghcr.io/rdapr/daprd:0.1.0")
    );
    assert_eq!(
        env(injector, "SIDECAR_IMAGE_PULL_POLICY").as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(
        env(injector, "DAPR_SENTRY_ADDRESS").as_deref(),
        Some("dapr-sentry.dapr-system.svc.cluster.local:443")
    );
    assert_eq!(
        env(injector, "DAPR_TRUST_ANCHORS_FILE").as_deref(),
        Some("/var/run/secrets/dapr.io/tls/ca.crt")
    );

    // The webhook calls the Service, as Dapr's chart does, and is installed without a
    // caBundle (the injector keeps it).
    let hook = &r.get("MutatingWebhookConfiguration", "dapr-sidecar-injector")["webhooks"][0];
    assert_eq!(hook["name"], "sidecar-injector.dapr.io");
    assert_eq!(
        hook["clientConfig"]["service"]["name"],
        "dapr-sidecar-injector"
    );
    assert_eq!(hook["clientConfig"]["service"]["namespace"], NAMESPACE);
    assert_eq!(hook["clientConfig"]["service"]["path"], "/mutate");
    assert!(hook["clientConfig"]["caBundle"].is_null());
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["rules"][0]["resources"][0], "pods");
    assert_eq!(hook["rules"][0]["operations"][0], "CREATE");

    // Sentry in Kubernetes mode, with an empty bundle for it to fill in.
    let sentry = container(&r, "Deployment", "dapr-sentry");
    assert_eq!(flag(sentry, "--mode").as_deref(), Some("kubernetes"));
    assert_eq!(
        flag(sentry, "--trust-domain").as_deref(),
        Some("cluster.local")
    );
    assert!(r.get("Secret", "dapr-trust-bundle")["data"].is_null());

    // Control-plane services show Sentry a token with Sentry's audience.
    let volumes = &r.get("Deployment", "dapr-operator")["spec"]["template"]["spec"]["volumes"];
    let token = volumes
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "dapr-identity-token")
        .expect("the token volume");
    assert_eq!(
        token["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "spiffe://cluster.local/ns/dapr-system/dapr-sentry"
    );

    let config = r.get("Configuration", "daprsystem");
    assert_eq!(config["spec"]["mtls"]["enabled"], true);
    assert_eq!(config["spec"]["mtls"]["workloadCertTTL"], "24h");

    // Every container runs locked down.
    for c in r.containers() {
        assert_eq!(c["securityContext"]["runAsNonRoot"], true, "{}", c["name"]);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(flag(c, "--log-as-json").as_deref(), Some("false"));
    }
}

#[test]
fn ha_runs_three_of_everything_and_placement_peers_with_all_three() {
    let r = template(&["--set", "global.ha.enabled=true"]);
    for (kind, name) in WORKLOADS {
        assert_eq!(replicas(&r, kind, name), 3, "{kind}/{name}");
    }
    // Spread over zones, each with a disruption budget, as Dapr's chart does.
    for (kind, name) in WORKLOADS {
        let term = &r.get(kind, name)["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["podAffinityTerm"];
        assert_eq!(term["topologyKey"], "topology.kubernetes.io/zone", "{name}");
        assert_eq!(term["labelSelector"]["matchLabels"]["app"], name);
        let budget = r.get("PodDisruptionBudget", &format!("{name}-disruption-budget"));
        assert_eq!(budget["spec"]["maxUnavailable"], "25%");
        assert_eq!(budget["spec"]["selector"]["matchLabels"]["app"], name);
    }
    let placement = container(&r, "StatefulSet", "dapr-placement-server");
    let peers = flag(placement, "--initial-cluster").expect("--initial-cluster");
    let peers: Vec<&str> = peers.split(',').collect();
    assert_eq!(
        peers,
        (0..3)
            .map(|i| format!(
                "dapr-placement-server-{i}=dapr-placement-server-{i}.dapr-placement-server.dapr-system.svc.cluster.local:8201"
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(flag(placement, "--id").as_deref(), Some("$(PLACEMENT_ID)"));
    assert_eq!(
        flag(placement, "--replicationFactor").as_deref(),
        Some("100")
    );
    let r = template(&[
        "--set",
        "global.ha.enabled=true",
        "--set",
        "global.ha.replicaCount=5",
    ]);
    assert_eq!(replicas(&r, "Deployment", "dapr-operator"), 5);
}

#[test]
fn dapr_value_names_reach_the_objects() {
    let r = template(&[
        "--set",
        "global.registry=registry.example.com/team",
        "--set",
        "global.tag=9.9.9",
        "--set",
        "global.logAsJson=true",
        "--set",
        "global.imagePullPolicy=Always",
        "--set",
        "global.mtls.controlPlaneTrustDomain=corp.example",
        "--set",
        "dapr_sidecar_injector.sidecarImagePullPolicy=Never",
        "--set",
        "dapr_sidecar_injector.webhookFailurePolicy=Fail",
        "--set",
        "dapr_sidecar_injector.webhookUrl=https://injector.example:4443/mutate",
        "--set",
        "dapr_sidecar_injector.allowedServiceAccounts=ci:deployer",
        "--set",
        "dapr_sidecar_injector.image.name=mirror.example/daprd:custom",
        "--set-json",
        r#"dapr_sidecar_injector.namespaceSelector={"matchLabels":{"team":"a"}}"#,
        "--set",
        "global.imagePullSecrets=pull-me",
        "--set",
        "dapr_placement.cluster.forceInMemoryLog=false",
    ]);
    for c in r.containers() {
        let image = c["image"].as_str().expect("image");
        assert!(
            image.starts_with("registry.example.com/team/") && image.ends_with(":9.9.9"),
            "{image}"
        );
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(flag(c, "--log-as-json").as_deref(), Some("true"));
    }
    for (kind, name) in WORKLOADS {
        assert_eq!(
            r.get(kind, name)["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
            "pull-me",
            "{kind}/{name}"
        );
    }
    let injector = container(&r, "Deployment", "dapr-sidecar-injector");
    assert_eq!(
        env(injector, "SIDECAR_IMAGE").as_deref(),
        Some("mirror.example/daprd:custom"),
        "a name with a / is a whole image reference"
    );
    assert_eq!(
        env(injector, "SIDECAR_IMAGE_PULL_POLICY").as_deref(),
        Some("Never")
    );
    assert_eq!(
        env(injector, "ALLOWED_SERVICE_ACCOUNTS").as_deref(),
        Some("ci:deployer")
    );
    assert_eq!(
        env(injector, "DAPR_CONTROL_PLANE_TRUST_DOMAIN").as_deref(),
        Some("corp.example")
    );
    let hook = &r.get("MutatingWebhookConfiguration", "dapr-sidecar-injector")["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(
        hook["clientConfig"]["url"],
        "https://injector.example:4443/mutate"
    );
    assert!(hook["clientConfig"]["service"].is_null());
    assert_eq!(hook["namespaceSelector"]["matchLabels"]["team"], "a");
    assert_eq!(
        flag(container(&r, "Deployment", "dapr-sentry"), "--trust-domain").as_deref(),
        Some("corp.example")
    );
    let placement = r.get("StatefulSet", "dapr-placement-server");
    assert_eq!(
        placement["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "raft-log"
    );
    assert_eq!(
        flag(
            &placement["spec"]["template"]["spec"]["containers"][0],
            "--raft-logstore-path"
        )
        .as_deref(),
        Some("/var/run/dapr/raft-log/$(PLACEMENT_ID)")
    );

    let off = template(&[
        "--set",
        "dapr_sidecar_injector.enabled=false",
        "--set",
        "global.actors.enabled=false",
    ]);
    assert!(!off.has("MutatingWebhookConfiguration", "dapr-sidecar-injector"));
    assert!(!off.has("Deployment", "dapr-sidecar-injector"));
    assert!(!off.has("StatefulSet", "dapr-placement-server"));
    assert!(off.has("Deployment", "dapr-operator"));
}

/// Each chart container's arguments are accepted by the binary it runs: `--version`
/// after them makes the binary parse everything, print its version, and exit.
#[test]
fn our_binaries_accept_every_flag_the_chart_passes() {
    let r = template(&["--set", "global.ha.enabled=true"]);
    for (name, binary) in [
        ("dapr-operator", "operator"),
        ("dapr-sentry", "sentry"),
        ("dapr-sidecar-injector", "injector"),
    ] {
        let c = container(&r, "Deployment", name);
        assert_eq!(c["command"][0], format!("/{binary}"));
        let mut a = args(c);
        a.push("--version".into());
        let out = Command::new(test_support::binary(binary))
            .args(&a)
            .output()
            .expect("run the binary");
        assert!(
            out.status.success(),
            "{binary} {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The Dockerfile has a target per image the chart names (the placement binary comes
/// with the actors work), each with the entrypoint the chart runs, built from binaries
/// the workspace has.
#[test]
fn the_dockerfile_builds_the_images_the_chart_runs() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let mut targets: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["FROM", _, "AS", name] | ["FROM", _, "as", name] => {
                current = Some(name.to_string());
            }
            [word @ ("ENTRYPOINT" | "CMD"), rest @ ..] => {
                let line: Vec<String> = serde_json::from_str(&rest.join(" ")).expect("exec form");
                let stage = current.clone().expect("a stage");
                let entry: &mut (Vec<String>, Vec<String>) = targets.entry(stage).or_default();
                if *word == "ENTRYPOINT" {
                    entry.0 = line;
                } else {
                    entry.1 = line;
                }
            }
            _ => {}
        }
    }
    let r = template(&[]);
    let injector = container(&r, "Deployment", "dapr-sidecar-injector");
    let sidecar = env(injector, "SIDECAR_IMAGE").expect("SIDECAR_IMAGE");
    let mut images = vec![(sidecar, "/daprd".to_string())];
    for (_, name) in &WORKLOADS[..3] {
        let c = container(&r, "Deployment", name);
        images.push((
            c["image"].as_str().expect("image").to_string(),
            c["command"][0].as_str().expect("command").to_string(),
        ));
    }
    for (image, command) in images {
        let name = image
            .rsplit('/')
            .next()
            .and_then(|n| n.split(':').next())
            .expect("image name");
        let (entrypoint, cmd) = targets
            .get(name)
            .unwrap_or_else(|| panic!("no Dockerfile target {name} for {image}"));
        if name == "daprd" {
            // The injector passes the program as the first argument, as Dapr's does: an
            // ENTRYPOINT would run `/daprd /daprd --mode ...`.
            assert!(entrypoint.is_empty(), "the daprd image has no ENTRYPOINT");
            assert_eq!(cmd, &vec![command.clone()]);
        } else {
            assert_eq!(entrypoint, &vec![command.clone()], "{name}");
        }
        let bin = command.trim_start_matches('/');
        assert!(
            dockerfile.contains(&format!("--bin {bin} "))
                || dockerfile.contains(&format!("--bin {bin}\n")),
            "the build stage builds {bin}"
        );
        assert!(
            test_support::binary(bin).exists(),
            "{bin} is a binary of the workspace"
        );
    }
}
