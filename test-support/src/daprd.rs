//! `daprd` started as `dapr run` would start it: on free loopback ports, bound to
//! `127.0.0.1`, with the given flags and environment, talked to over sockets.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::{Process, binary, free_port};

/// The sidecar exited before it became healthy.
#[derive(Debug, Error)]
#[error("daprd exited early with {status}; log:\n{log}")]
pub struct ExitedEarly {
    pub status: ExitStatus,
    /// Everything it wrote before exiting.
    pub log: String,
}

impl ExitedEarly {
    /// It lost a free port to another test between the port's choice and its bind.
    pub fn lost_a_port(&self) -> bool {
        self.log.contains("Address already in use")
    }
}

/// A running `daprd`, killed when dropped.
pub struct Sidecar {
    process: Process,
    pub http: u16,
    pub grpc: u16,
    pub metrics: u16,
    pub app_id: String,
}

#[derive(Clone)]
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    app_id: String,
}

pub fn daprd() -> Builder {
    Builder {
        args: Vec::new(),
        env: Vec::new(),
        app_id: format!("app{}", free_port()),
    }
}

impl Builder {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<const N: usize>(mut self, args: [&str; N]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn app_id(mut self, id: &str) -> Self {
        self.app_id = id.into();
        self
    }

    pub fn resources(self, dir: &Path) -> Self {
        self.arg("--resources-path").arg(dir.display().to_string())
    }

    /// Spawns the sidecar without waiting for it.
    pub fn spawn(self) -> Sidecar {
        let (http, grpc, metrics) = (free_port(), free_port(), free_port());
        let mut args: Vec<String> = [
            "--app-id",
            &self.app_id,
            "--dapr-http-port",
            &http.to_string(),
            "--dapr-grpc-port",
            &grpc.to_string(),
            "--dapr-listen-addresses",
            "127.0.0.1",
            "--metrics-port",
            &metrics.to_string(),
            "--metrics-listen-address",
            "127.0.0.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.args);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Sidecar {
            process: Process::spawn(&binary("daprd"), &args, &env),
            http,
            grpc,
            metrics,
            app_id: self.app_id,
        }
    }

    /// Spawns the sidecar and waits until `/v1.0/healthz` answers 204. Free ports are
    /// found by binding port 0 and letting go, so another test can take one first: a start
    /// that fails on "Address already in use" is retried on fresh ports.
    pub async fn start(self) -> Sidecar {
        for _ in 0..4 {
            let mut sidecar = self.clone().spawn();
            match sidecar.healthy_or_exit().await {
                Ok(()) => return sidecar,
                Err(e) if e.lost_a_port() => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("daprd could not find free ports in four tries");
    }
}

impl Sidecar {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http, path)
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// `GET /v1.0/metadata`.
    pub async fn metadata(&self) -> serde_json::Value {
        metadata_at(self.http).await
    }

    /// The names of the components the metadata API lists, sorted.
    pub async fn component_names(&self) -> Vec<String> {
        component_names_at(self.http).await
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits for healthz, or returns the log if the process exits first.
    async fn healthy_or_exit(&mut self) -> Result<(), ExitedEarly> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.try_exit() {
                return Err(ExitedEarly {
                    status,
                    log: self.log(),
                });
            }
            if let Ok(r) = client.get(self.url("/v1.0/healthz")).send().await
                && r.status() == 204
            {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "daprd never became healthy; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_healthy(&mut self) {
        let url = self.url("/v1.0/healthz");
        self.process
            .wait_answers(&url, 204, Duration::from_secs(20))
            .await;
    }

    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.process.try_exit()
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        self.process.wait_exit(within).await
    }

    pub fn sigterm(&self) {
        self.process.sigterm()
    }
}

/// Writes a resources folder from `(file name, yaml)` pairs.
pub fn resources(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write resource");
    }
    dir
}

pub fn component(name: &str, kind: &str, metadata: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in metadata {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    if metadata.is_empty() {
        yaml = yaml.replace("  metadata:\n", "  metadata: []\n");
    }
    yaml
}

/// Writes a Configuration selecting `nameresolution.sqlite` on a file in `dir`, so the
/// sidecars of one test find each other and nobody else's; returns its path.
pub fn resolution_config(dir: &Path) -> String {
    let path = dir.join("config.yaml");
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: nr\nspec:\n  nameResolution:\n    component: sqlite\n    configuration:\n      connectionString: \"{}\"\n      updateInterval: 1s\n",
        dir.join("hosts.db").display()
    );
    std::fs::write(&path, yaml).expect("write config");
    path.display().to_string()
}

/// `GET /v1.0/metadata` of the sidecar whose HTTP API is on `port`.
pub async fn metadata_at(port: u16) -> serde_json::Value {
    reqwest::get(format!("http://127.0.0.1:{port}/v1.0/metadata"))
        .await
        .expect("metadata")
        .json()
        .await
        .expect("metadata is JSON")
}

/// The names of the components that sidecar lists, sorted.
pub async fn component_names_at(port: u16) -> Vec<String> {
    let meta = metadata_at(port).await;
    let mut names: Vec<String> = meta["components"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
