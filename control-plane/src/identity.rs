//! A control-plane service's own certificate from Sentry (`dapr-operator`,
//! `dapr-injector`, `dapr-placement` in the control plane's namespace), renewed for as
//! long as the process runs, as Dapr's control plane gets it.

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use security::{IdentityCell, SentryClient, SentryError, SpiffeId};
use thiserror::Error;

/// How long a starting service waits for Sentry.
const SENTRY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("reading the trust anchors {path:?}: {source}")]
    Anchors {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(security::TokenError),
    #[error("getting {app_id}'s certificate from Sentry: {source}")]
    Sentry {
        app_id: String,
        #[source]
        source: SentryError,
    },
}

/// Who this service is and where its Sentry lives.
pub struct OwnIdentity<'a> {
    /// `--sentry-address`; empty means no mTLS.
    pub sentry_address: &'a str,
    /// `--trust-anchors-file`, PEM.
    pub trust_anchors_file: &'a str,
    pub trust_domain: &'a str,
    /// The control plane's namespace, Sentry's and this service's.
    pub namespace: &'a str,
    pub app_id: &'a str,
}

/// This service's certificate and the roots its peers chain to.
pub struct Identity {
    pub cell: Arc<IdentityCell>,
    pub roots: Arc<RootCertStore>,
}

impl OwnIdentity<'_> {
    /// The certificate, when a Sentry is configured; `None` without one. Uses the
    /// projected token when mounted (Kubernetes validator), none otherwise (insecure).
    pub async fn start(self) -> Result<Option<Identity>, IdentityError> {
        if self.sentry_address.is_empty() {
            return Ok(None);
        }
        let sentry = |source| IdentityError::Sentry {
            app_id: self.app_id.to_string(),
            source,
        };
        let anchors = std::fs::read_to_string(self.trust_anchors_file).map_err(|source| {
            IdentityError::Anchors {
                path: self.trust_anchors_file.to_string(),
                source,
            }
        })?;
        let roots = security::sentry_client::root_store(&anchors).map_err(sentry)?;
        // A projected token (or DAPR_SENTRY_TOKEN_FILE) when there is one; a control
        // plane run by hand next to a standalone Sentry goes without (INSECURE).
        let token = match security::sentry_token::find_dapr(true) {
            Ok(token) => token,
            Err(security::TokenError::Missing) => security::SentryToken::insecure(),
            Err(e) => return Err(IdentityError::Token(e)),
        };
        let cell = SentryClient {
            address: self.sentry_address.to_string(),
            roots: roots.clone(),
            sentry_id: SpiffeId::new(self.trust_domain, self.namespace, "dapr-sentry"),
            app_id: self.app_id.to_string(),
            namespace: self.namespace.to_string(),
            trust_domain: self.trust_domain.to_string(),
            token,
        }
        .start(SENTRY_WAIT)
        .await
        .map_err(sentry)?;
        Ok(Some(Identity { cell, roots }))
    }
}
