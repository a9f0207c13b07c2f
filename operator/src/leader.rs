//! Leader election on a `coordination.k8s.io` Lease, so that several operator replicas are
//! safe: all of them serve sidecars, only the leader writes (Services, Events).

use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

const LEASE_NAME: &str = "dapr-operator";

/// Watches leadership: `true` while this replica holds the Lease. With election disabled,
/// always `true`.
pub async fn elect(
    client: kube::Client,
    namespace: &str,
    identity: &str,
    lease: Duration,
    disabled: bool,
) -> anyhow::Result<watch::Receiver<bool>> {
    if disabled {
        // The sender goes away at once; the value stays `true` for good.
        return Ok(watch::channel(true).1);
    }
    let seconds = lease.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(seconds)
        // Renew when a third of the lease is left.
        .with_grace((seconds / 3).max(1))
        .build()
        .await?;
    let (rx, task) = manager.watch().await;
    tokio::spawn(async move {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("leader election stopped: {e}"),
            Err(e) => tracing::error!("leader election task failed: {e}"),
        }
    });
    Ok(rx)
}
