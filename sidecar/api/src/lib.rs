//! The front doors: Dapr's HTTP API (axum) and gRPC API (tonic). Both parse requests,
//! call the same building blocks, and encode the same results and errors.

pub mod grpc;
pub mod http;
pub mod internal;

use std::sync::Arc;

use tokio::sync::watch;

use blocks::health::Health;
use blocks::metadata::MetadataBlock;
use blocks::state::StateBlock;

/// What both front doors share: the building blocks and the sidecar's lifecycle.
pub struct Api {
    pub state: Arc<StateBlock>,
    pub pubsub: Arc<blocks::pubsub::PubSubBlock>,
    pub subscriber: Arc<blocks::pubsub::subscriptions::Subscriber>,
    pub bindings: Arc<blocks::bindings::BindingsBlock>,
    pub inputs: Arc<blocks::bindings::inputs::Inputs>,
    pub invoke: blocks::invoke::InvokeBlock,
    pub metadata: Arc<MetadataBlock>,
    pub health: Arc<Health>,
    /// `DAPR_API_TOKEN`: when set, every API but healthz requires it.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: sent to our app as `dapr-api-token` on calls proxied to it.
    pub app_api_token: Option<String>,
    /// `--max-body-size` in bytes.
    pub max_body_size: usize,
    /// `--read-buffer-size` in bytes: the most request headers may take.
    pub read_buffer_size: usize,
    /// `--enable-api-logging`.
    pub log_requests: bool,
    /// `--enable-metrics`: where request counts and latencies go.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// Starts the span of every API call (`spec.tracing`).
    pub tracer: trace::Tracer,
    /// Flipped to `true` to ask the runtime for a graceful shutdown.
    pub shutdown: watch::Sender<bool>,
    /// Set with `shutdown` when the caller asked for a forced one (`dapr-force-shutdown`):
    /// the process then exits at once with status 1, as Dapr's does.
    pub forced_shutdown: std::sync::atomic::AtomicBool,
    /// `--allowed-origins`, for CORS.
    pub allowed_origins: crate::http::AllowedOrigins,
}

/// An API error's Dapr code and category, carried on its way out (an HTTP response's
/// extension, a gRPC status's source) to the front door's metrics, so the error code
/// series is counted where every answer passes and no building block knows of metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeTag {
    pub code: &'static str,
    pub category: &'static str,
}

impl ErrorCodeTag {
    /// The tag Dapr would count `err` under, if it counts that code at all.
    pub fn of(err: &blocks::errors::DaprError) -> Option<Self> {
        err.category().map(|category| Self {
            code: err.code,
            category,
        })
    }
}

impl std::fmt::Display for ErrorCodeTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code, self.category)
    }
}

impl std::error::Error for ErrorCodeTag {}

/// Compares a presented API token with the configured one in time that does not depend on
/// where they differ, so the token cannot be guessed byte by byte from response times.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    presented
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

impl Api {
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A shutdown that skips the graceful part.
    pub fn request_forced_shutdown(&self) {
        self.forced_shutdown
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.request_shutdown();
    }

    /// Whether the shutdown asked for is a forced one.
    pub fn shutdown_is_forced(&self) -> bool {
        self.forced_shutdown
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The header (HTTP) or metadata key (gRPC) that turns a shutdown request into a forced one.
pub const FORCE_SHUTDOWN: &str = "dapr-force-shutdown";

/// Whether a `dapr-force-shutdown` value asks for it (`true`, any case).
pub fn forces_shutdown(value: Option<&[u8]>) -> bool {
    value.is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"true"))
}
