//! Name resolution: finding the internal gRPC address of another app's sidecar by app id.
//! A resolver also announces this sidecar so others can find it.

use async_trait::async_trait;
use thiserror::Error;

/// This sidecar, as others should reach it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub app_id: String,
    pub namespace: String,
    /// `host:port` of the internal gRPC server (`[v6]:port` for IPv6).
    pub address: String,
    /// Whether the host in `address` was chosen (`DAPR_HOST_IP`, or a loopback listen
    /// address) and must be published as it is. When not, a resolver that speaks per
    /// network interface (mDNS) publishes each interface's own address instead.
    pub pinned: bool,
}

#[derive(Debug, Error)]
pub enum ResolveError {
    #[error("no instance of app {0} is registered")]
    NotFound(String),
    #[error("name resolution failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// The address of one live sidecar of `app_id` in `namespace`.
    async fn resolve(&self, app_id: &str, namespace: &str) -> Result<String, ResolveError>;

    /// Withdraws this sidecar's registration on shutdown, so callers stop picking it
    /// before its heartbeat or TTL would tell them.
    async fn unregister(&self) {}
}
