//! Leader election on a `coordination.k8s.io` Lease, so that several replicas of a
//! control-plane service are safe: all of them serve, only the holder of the Lease does
//! the work that must happen once (the operator's reconcilers, placement's leader).

use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use thiserror::Error;
use tokio::sync::watch;

#[derive(Debug, Error)]
#[error("starting leader election on Lease {namespace}/{lease}: {source}")]
pub struct ElectionError {
    lease: String,
    namespace: String,
    #[source]
    source: LeaseManagerError,
}

/// How a replica takes part in the election.
pub struct Election<'a> {
    /// The Lease's name (`dapr-operator`, ...).
    pub lease: &'a str,
    pub namespace: &'a str,
    /// This replica's name in the Lease's `holderIdentity`.
    pub identity: &'a str,
    /// How long a leader's Lease lasts without renewal: the longest a replica waits to
    /// take over from a leader that died.
    pub duration: Duration,
    /// A single replica that leads for good, without a Lease.
    pub disabled: bool,
}

impl Election<'_> {
    /// Watches leadership: `true` while this replica holds the Lease. With election
    /// disabled, `true` for good (the sender is gone, so `changed()` fails at once).
    pub async fn start(self, client: kube::Client) -> Result<watch::Receiver<bool>, ElectionError> {
        if self.disabled {
            return Ok(watch::channel(true).1);
        }
        let seconds = self.duration.as_secs().max(2);
        let manager = LeaseManagerBuilder::new(client, self.lease)
            .with_namespace(self.namespace)
            .with_identity(self.identity)
            .with_duration(seconds)
            // Renew when a third of the lease is left.
            .with_grace((seconds / 3).max(1))
            .build()
            .await
            .map_err(|source| ElectionError {
                lease: self.lease.to_string(),
                namespace: self.namespace.to_string(),
                source,
            })?;
        let (rx, task) = manager.watch().await;
        let lease = self.lease.to_string();
        tokio::spawn(async move {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(lease, "leader election stopped: {e}"),
                Err(e) => tracing::error!(lease, "leader election task failed: {e}"),
            }
        });
        Ok(rx)
    }
}

/// This replica's name: the Pod's (`POD_NAME`, as Dapr's manifests set it), else the host
/// name and process id.
pub fn replica_identity(pod_name: Option<String>) -> String {
    pod_name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}
