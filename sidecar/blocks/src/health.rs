use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness as `/v1.0/healthz` and `/v1.0/healthz/outbound` report it: outbound is ready
/// once the API servers listen; the sidecar is ready once initialisation has finished.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    outbound: AtomicBool,
    /// With app health checks on, an unhealthy app makes the sidecar not ready.
    app: Option<std::sync::Arc<channel::AppHealth>>,
}

impl Health {
    pub fn with_app(app: Option<std::sync::Arc<channel::AppHealth>>) -> Self {
        Self {
            app,
            ..Self::default()
        }
    }

    /// Whether the app (if checked) is healthy.
    pub fn app_healthy(&self) -> bool {
        self.app.as_ref().is_none_or(|a| a.is_healthy())
    }

    pub fn set_outbound_ready(&self) {
        self.outbound.store(true, Ordering::Release);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn is_outbound_ready(&self) -> bool {
        self.outbound.load(Ordering::Acquire)
    }
}
