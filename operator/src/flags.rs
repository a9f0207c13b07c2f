//! The operator's command line, with the names and defaults of Dapr's operator so that
//! existing manifests and Helm values carry over.

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "operator", about = "Dapr operator", version = env!("CARGO_PKG_VERSION"))]
pub struct Flags {
    /// Path to a kubeconfig; in-cluster configuration (or $KUBECONFIG) when empty.
    #[arg(long, default_value = "")]
    pub kubeconfig: String,
    /// Name of the Configuration holding the control plane's settings.
    #[arg(long, default_value = "daprsystem")]
    pub config: String,
    /// Port of the gRPC API sidecars call.
    #[arg(long, default_value_t = 6500)]
    pub port: u16,
    #[arg(long = "api-listen-address", default_value = "")]
    pub api_listen_address: String,
    #[arg(long = "healthz-port", default_value_t = 8080)]
    pub healthz_port: u16,
    #[arg(long = "healthz-listen-address", default_value = "")]
    pub healthz_listen_address: String,
    #[arg(long = "metrics-port", default_value_t = 9090)]
    pub metrics_port: u16,
    #[arg(long = "metrics-listen-address", default_value = "")]
    pub metrics_listen_address: String,
    #[arg(long = "enable-metrics", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_metrics: bool,
    #[arg(long = "disable-leader-election", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub disable_leader_election: bool,
    /// Namespace of the Lease; the operator's own namespace by default.
    #[arg(
        long = "leader-election-namespace",
        env = "NAMESPACE",
        default_value = "dapr-system"
    )]
    pub leader_election_namespace: String,
    /// How long a leader's Lease lasts without renewal, in seconds: the longest a
    /// replica waits to take over from a leader that died.
    #[arg(long = "leader-election-lease-duration", default_value_t = 15)]
    pub leader_election_lease_duration: u64,
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    #[arg(long = "log-as-json", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub log_as_json: bool,
    /// PEM trust anchors; with `--sentry-address`, the API is served over mTLS and each
    /// sidecar is limited to the namespace in its certificate.
    #[arg(long = "trust-anchors-file", default_value = "")]
    pub trust_anchors_file: String,
    /// Sentry, for the operator's own certificate (`dapr-operator`).
    #[arg(
        long = "sentry-address",
        env = "DAPR_SENTRY_ADDRESS",
        default_value = ""
    )]
    pub sentry_address: String,
    /// Port of the Subscription conversion webhook; 0 turns it off.
    #[arg(long = "webhook-server-port", default_value_t = 19443)]
    pub webhook_server_port: u16,
    #[arg(long = "webhook-server-listen-address", default_value = "")]
    pub webhook_server_listen_address: String,
    /// Where the API server reaches the webhook, when the `dapr-webhook` Service is not
    /// routable (a cluster without kube-proxy); the Service when empty.
    #[arg(long = "webhook-url", default_value = "")]
    pub webhook_url: String,
    #[arg(long = "control-plane-trust-domain", default_value = "localhost")]
    pub control_plane_trust_domain: String,
    #[arg(long = "watch-interval", default_value = "0")]
    pub watch_interval: String,
    #[arg(long = "max-pod-restarts-per-minute", default_value_t = 20)]
    pub max_pod_restarts_per_minute: u32,
    #[arg(long = "watch-namespace", default_value = "")]
    pub watch_namespace: String,
}
