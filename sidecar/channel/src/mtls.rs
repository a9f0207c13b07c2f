//! This sidecar's workload identity under mTLS: the certificate from Sentry (renewed in
//! place) and the trust anchors. Peers are checked by their SPIFFE ID,
//! `spiffe://<trust domain>/ns/<namespace>/<app id>`; how the identity is obtained is the
//! runtime's business.

use std::sync::Arc;

use rustls::RootCertStore;
use security::IdentityCell;

/// The identity used on the internal gRPC port in both directions.
pub struct Mtls {
    pub identity: Arc<IdentityCell>,
    pub roots: Arc<RootCertStore>,
}

impl Mtls {
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        security::server_config(self.identity.clone(), self.roots.clone())
    }

    /// For calling the sidecar of `app_id` in `namespace`: it must prove to be exactly that.
    pub fn client_for(&self, app_id: &str, namespace: &str) -> Arc<rustls::ClientConfig> {
        let (app, ns) = (app_id.to_string(), namespace.to_string());
        security::client_config(Some(self.identity.clone()), self.roots.clone(), move |id| {
            id.app_id == app && id.namespace == ns
        })
    }
}
