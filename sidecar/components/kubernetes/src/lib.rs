//! `nameresolution.kubernetes`: in a cluster every app's sidecar sits behind the headless
//! Service `<app-id>-dapr` that the operator keeps, so an address is a DNS name and the
//! internal port: `<app-id>-dapr.<namespace>.svc.<cluster-domain>:50002`.

use async_trait::async_trait;

use std::sync::Arc;

use components_core::nameresolution::{ResolveError, Resolver};
use components_core::{Properties, Registry};

/// Dapr's internal gRPC port inside a pod.
pub const INTERNAL_PORT: u16 = 50002;

/// Registers this crate's backends.
pub fn register(registry: &mut Registry) {
    registry.register_resolver("kubernetes", |init| async move {
        Ok(Arc::new(KubernetesResolver::new(
            &init.properties,
            &init.instance.namespace,
        ))
            as Arc<dyn components_core::nameresolution::Resolver>)
    });
}

pub struct KubernetesResolver {
    cluster_domain: String,
    /// The namespace of calls that name none.
    namespace: String,
}

impl KubernetesResolver {
    /// `clusterDomain` (default `cluster.local`) comes from the Configuration's
    /// `nameResolution.configuration`.
    pub fn new(props: &Properties, namespace: &str) -> Self {
        Self {
            cluster_domain: props.get_or("clusterDomain", "cluster.local").to_string(),
            namespace: if namespace.is_empty() {
                "default".to_string()
            } else {
                namespace.to_string()
            },
        }
    }

    pub fn address(&self, app_id: &str, namespace: &str) -> String {
        let ns = if namespace.is_empty() {
            &self.namespace
        } else {
            namespace
        };
        format!(
            "{app_id}-dapr.{ns}.svc.{}:{INTERNAL_PORT}",
            self.cluster_domain
        )
    }
}

#[async_trait]
impl Resolver for KubernetesResolver {
    async fn resolve(&self, app_id: &str, namespace: &str) -> Result<String, ResolveError> {
        if app_id.is_empty() {
            return Err(ResolveError::NotFound(app_id.to_string()));
        }
        Ok(self.address(app_id, namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_headless_service_scheme() {
        let r = KubernetesResolver::new(&Properties::default(), "prod");
        assert_eq!(
            r.address("orders", ""),
            "orders-dapr.prod.svc.cluster.local:50002"
        );
        assert_eq!(
            r.address("orders", "other"),
            "orders-dapr.other.svc.cluster.local:50002"
        );
        let r = KubernetesResolver::new(&Properties::new([("clusterDomain", "corp.internal")]), "");
        assert_eq!(r.address("a", ""), "a-dapr.default.svc.corp.internal:50002");
    }
}
