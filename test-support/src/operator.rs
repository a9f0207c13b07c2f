//! A real `operator` for the Kubernetes tests, against the API server that
//! `tests/k8s/control-plane.sh` starts.

use std::time::Duration;

use crate::{Process, eventually, free_port};

/// A running `operator` against the test API server (`KUBECONFIG`), all its ports on
/// loopback; it is killed when dropped.
pub struct Operator {
    pub process: Process,
    /// The port of the sidecars' API.
    pub port: u16,
    pub metrics: u16,
}

impl Operator {
    /// Starts the operator with `extra` flags and returns once both healthz and the
    /// sidecars' API are up. Its own flags have one dash, as Dapr's Helm chart writes
    /// them; `extra` may use either form.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[]).await
    }

    /// [`Operator::start`] with `env` added to its environment (a Sentry token file, ...).
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let (port, healthz, metrics, webhook) =
            (free_port(), free_port(), free_port(), free_port());
        let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
        // No kube-proxy here: the API server reaches the conversion webhook by URL.
        let webhook_url = format!("https://127.0.0.1:{webhook}/convert");
        let mut args: Vec<String> = [
            "-kubeconfig",
            &kubeconfig,
            "-port",
            &port.to_string(),
            "-api-listen-address",
            "127.0.0.1",
            "-healthz-port",
            &healthz.to_string(),
            "-healthz-listen-address",
            "127.0.0.1",
            "-metrics-port",
            &metrics.to_string(),
            "-metrics-listen-address",
            "127.0.0.1",
            "-webhook-server-port",
            &webhook.to_string(),
            "-webhook-server-listen-address",
            "127.0.0.1",
            "-webhook-url",
            &webhook_url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let bin = crate::binary("operator");
        let mut process = Process::spawn(&bin, &args, env);
        let url = format!("http://127.0.0.1:{healthz}/healthz");
        process
            .wait_answers(&url, 200, Duration::from_secs(30))
            .await;
        // Healthz comes up first; the sidecars' API once the operator has its identity.
        eventually(
            Duration::from_secs(30),
            "the operator API listening",
            || {
                let up = process.log().contains("operator API listening");
                async move { up }
            },
        )
        .await;
        Operator {
            process,
            port,
            metrics,
        }
    }

    /// The value of the metric `name` (without labels), if the operator exports it.
    pub async fn metric(&self, name: &str) -> Option<u64> {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    }
}
