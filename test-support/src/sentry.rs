//! A real `sentry` for the tests that need certificates: on loopback ports, for trust
//! domain `cp.example`, in namespace `dapr-system`.

use std::path::Path;
use std::time::Duration;

use crate::{Process, free_port};

/// The trust domain every test Sentry signs for.
pub const TRUST_DOMAIN: &str = "cp.example";

/// A running `sentry`; it is killed when dropped.
pub struct Sentry {
    pub process: Process,
    /// The port of its CA API.
    pub port: u16,
}

/// Starts `sentry` with its issuer credentials in `credentials` (it writes a fresh bundle
/// there when the folder is empty), an optional Configuration file and `extra` flags, and
/// returns once its CA API accepts connections. The trust bundle is polled every 200 ms,
/// so tests that rotate the issuer do not wait long. Its own flags are written with one
/// dash, as Dapr's Helm chart writes them; `extra` may use either form.
pub async fn start(credentials: &Path, config: Option<&Path>, extra: &[&str]) -> Sentry {
    let port = free_port();
    let mut args: Vec<String> = [
        "-port",
        &port.to_string(),
        "-listen-address",
        "127.0.0.1",
        "-healthz-port",
        &free_port().to_string(),
        "-healthz-listen-address",
        "127.0.0.1",
        "-metrics-port",
        &free_port().to_string(),
        "-metrics-listen-address",
        "127.0.0.1",
        "-trust-domain",
        TRUST_DOMAIN,
        "-issuer-credentials",
        &credentials.display().to_string(),
        "-trust-bundle-poll-interval",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(config) = config {
        args.push("-config".into());
        args.push(config.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut process = Process::spawn(
        &crate::binary("sentry"),
        &args,
        &[("NAMESPACE", "dapr-system")],
    );
    process.wait_listening(port, Duration::from_secs(30)).await;
    Sentry { process, port }
}
