//! Sentry's command line, with the names and defaults of Dapr's Sentry.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "sentry", about = "Dapr Sentry certificate authority", version = env!("CARGO_PKG_VERSION"))]
pub struct Flags {
    /// Port of the CA's gRPC API.
    #[arg(long, default_value_t = 50001)]
    pub port: u16,
    #[arg(long = "listen-address", default_value = "0.0.0.0")]
    pub listen_address: String,
    /// Trust domain of the control plane (Sentry's own identity).
    #[arg(long = "trust-domain", default_value = "localhost")]
    pub trust_domain: String,
    /// Folder with `ca.crt`, `issuer.crt` and `issuer.key` (standalone mode).
    #[arg(
        long = "issuer-credentials",
        default_value = "/var/run/secrets/dapr.io/credentials"
    )]
    pub issuer_credentials: PathBuf,
    #[arg(long = "issuer-ca-filename", default_value = "ca.crt")]
    pub issuer_ca_filename: String,
    #[arg(long = "issuer-certificate-filename", default_value = "issuer.crt")]
    pub issuer_certificate_filename: String,
    #[arg(long = "issuer-key-filename", default_value = "issuer.key")]
    pub issuer_key_filename: String,
    /// The control plane's Configuration (workload certificate lifetime and allowed
    /// clock skew): a file standalone; in Kubernetes the name of a Configuration in
    /// Sentry's namespace, `daprsystem` when empty.
    #[arg(long, default_value = "")]
    pub config: String,
    #[arg(long = "healthz-port", default_value_t = 8080)]
    pub healthz_port: u16,
    #[arg(long = "healthz-listen-address", default_value = "0.0.0.0")]
    pub healthz_listen_address: String,
    #[arg(long = "metrics-port", default_value_t = 9090)]
    pub metrics_port: u16,
    #[arg(long = "metrics-listen-address", default_value = "0.0.0.0")]
    pub metrics_listen_address: String,
    #[arg(long = "enable-metrics", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_metrics: bool,
    /// `kubernetes` keeps the bundle in the `dapr-trust-bundle` Secret and validates
    /// callers with TokenReview; `standalone` uses files and trusts callers.
    #[arg(long, default_value = "standalone")]
    pub mode: String,
    #[arg(long, default_value = "")]
    pub kubeconfig: String,
    /// The control plane's namespace (Sentry's own, and where the bundle Secret lives).
    #[arg(long, env = "NAMESPACE", default_value = "dapr-system")]
    pub namespace: String,
    /// How often the trust bundle is checked for changes.
    #[arg(long = "trust-bundle-poll-interval", default_value = "1s")]
    pub trust_bundle_poll_interval: String,
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    #[arg(long = "log-as-json", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub log_as_json: bool,
}

impl Flags {
    pub fn sentry_spiffe_id(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/dapr-sentry",
            self.trust_domain, self.namespace
        )
    }

    pub fn kubernetes(&self) -> bool {
        self.mode == "kubernetes"
    }
}
