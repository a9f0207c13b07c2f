//! App health checks (`--enable-app-health-check`): a probe every interval; the app turns
//! unhealthy after `threshold` failures in a row and healthy again on the first success.
//! An unhealthy app gets no invocations and makes `/v1.0/healthz` report not ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::AppChannel;

/// The app's last known health; healthy unless health checks say otherwise.
#[derive(Debug)]
pub struct AppHealth {
    healthy: AtomicBool,
}

impl Default for AppHealth {
    fn default() -> Self {
        Self {
            healthy: AtomicBool::new(true),
        }
    }
}

impl AppHealth {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    fn set(&self, healthy: bool) {
        if self.healthy.swap(healthy, Ordering::AcqRel) != healthy {
            if healthy {
                tracing::info!("app entered healthy status");
            } else {
                tracing::warn!("app entered un-healthy status");
            }
        }
    }
}

/// What `--app-health-*` flags configure.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub threshold: u32,
}

impl HealthProbe {
    /// Probes until the channel is dropped.
    pub fn spawn(self, channel: &Arc<AppChannel>) {
        let weak = Arc::downgrade(channel);
        tokio::spawn(async move {
            let mut failures = 0u32;
            let mut tick = tokio::time::interval(self.interval);
            loop {
                tick.tick().await;
                let Some(channel) = weak.upgrade() else { break };
                if channel.probe(&self.path, self.timeout).await {
                    failures = 0;
                    channel.health().set(true);
                } else {
                    failures = failures.saturating_add(1);
                    if failures >= self.threshold.max(1) {
                        channel.health().set(false);
                    }
                }
            }
        });
    }
}
