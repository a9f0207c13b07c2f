//! `kubectl` against the test control plane (`tests/k8s/control-plane.sh` exports
//! `KUBECTL` and `KUBECONFIG`).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs kubectl with `args`, feeding `stdin` if given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Output {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(kubectl)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to kubectl");
    }
    child.wait_with_output().expect("kubectl output")
}

/// Runs kubectl and returns its output, panicking with its stderr when it fails.
pub fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(args, stdin);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A ServiceAccount token as the kubelet projects it into a Pod: for `service_account` of
/// `namespace`, with `audience`, bound to the Pod `pod` (so Sentry's KUBERNETES validator
/// can check the Pod behind it).
pub fn bound_token(namespace: &str, service_account: &str, audience: &str, pod: &str) -> String {
    kubectl_ok(
        &[
            "create",
            "token",
            service_account,
            "-n",
            namespace,
            "--audience",
            audience,
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            pod,
        ],
        None,
    )
    .trim()
    .to_string()
}

/// A one-replica Deployment `name` whose Pods (label `app: name`) carry `annotations`.
pub fn deployment(name: &str, annotations: &serde_json::Value) -> String {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            },
        },
    })
    .to_string()
}
