//! The frame every control-plane binary runs in. The operator, Sentry and the coming
//! injector and placement differ in what they serve; they start, log, find the cluster,
//! prove who they are, elect a leader, expose health and metrics, and stop in the same
//! way, so that way lives here once.
//!
//! A binary's `main` calls [`init`], builds its servers and background work as tasks of a
//! [`Supervisor`], and returns what [`Supervisor::run`] returns: the first task that fails
//! (or a signal) stops all of them.

pub mod http;
pub mod identity;
pub mod kubernetes;
pub mod leader;
pub mod supervisor;

pub use supervisor::{Shutdown, Supervisor};

/// Installs the process-wide rustls crypto provider (ring, for kube's TLS and ours) and
/// the log subscriber, `--log-level` filtered, as JSON with `--log-as-json`.
pub fn init(log_level: &str, json: bool) {
    // Installing twice is harmless (a test may have installed it); the first one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_new(log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("logging was already set up: {e}");
    }
}
