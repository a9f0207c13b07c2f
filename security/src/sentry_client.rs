//! Getting a workload certificate from Sentry and keeping it fresh: a new key and CSR,
//! `SignCertificate` over TLS to a Sentry whose certificate chains to the trust anchors
//! and carries Sentry's SPIFFE ID, then renewal at half the certificate's life. Renewal
//! swaps the certificate in the `IdentityCell`, so no connection is dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::sentry::v1::SignCertificateRequest;
use proto::sentry::v1::ca_client::CaClient;
use rcgen::{CertificateParams, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use thiserror::Error;

use crate::SentryToken;

use crate::SpiffeId;
use crate::renewal::{self, Issued, Issuer};
use crate::tls::{IdentityCell, channel_with_tls, client_config};

#[derive(Debug, Error)]
pub enum SentryError {
    #[error("no trust anchors: set DAPR_TRUST_ANCHORS to the PEM root certificates")]
    NoAnchors,
    #[error("invalid trust anchors: {0}")]
    BadAnchors(String),
    #[error("creating the key or CSR: {0}")]
    Key(String),
    #[error("Sentry at {address}: {message}")]
    Call { address: String, message: String },
    #[error("Sentry's answer is unusable: {0}")]
    BadAnswer(String),
}

/// Parses PEM trust anchors into a root store.
pub fn root_store(anchors_pem: &str) -> Result<Arc<RootCertStore>, SentryError> {
    let mut roots = RootCertStore::empty();
    for pem in x509_parser::pem::Pem::iter_from_buffer(anchors_pem.as_bytes()) {
        let pem = pem.map_err(|e| SentryError::BadAnchors(e.to_string()))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        roots
            .add(CertificateDer::from(pem.contents))
            .map_err(|e| SentryError::BadAnchors(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(SentryError::NoAnchors);
    }
    Ok(Arc::new(roots))
}

/// Who asks, and how it proves it.
#[derive(Clone)]
pub struct SentryClient {
    pub address: String,
    pub roots: Arc<RootCertStore>,
    /// Sentry's own identity, which its certificate must carry.
    pub sentry_id: SpiffeId,
    pub app_id: String,
    pub namespace: String,
    pub trust_domain: String,
    /// What proves who this workload is: a ServiceAccount token in Kubernetes, nothing
    /// (INSECURE) in standalone mode.
    pub token: SentryToken,
}

impl Issuer for SentryClient {
    type Error = SentryError;
    const KIND: &'static str = "workload certificate";

    async fn issue(&self) -> Result<Issued, SentryError> {
        let key = KeyPair::generate().map_err(|e| SentryError::Key(e.to_string()))?;
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .and_then(|c| c.pem())
            .map_err(|e| SentryError::Key(e.to_string()))?;
        let expected = self.sentry_id.clone();
        let config = client_config(None, self.roots.clone(), move |id| *id == expected);
        let call_error = |message: String| SentryError::Call {
            address: self.address.clone(),
            message,
        };
        let channel = channel_with_tls(&self.address, config).map_err(call_error)?;
        let request = SignCertificateRequest {
            id: self.app_id.clone(),
            token: self.token.value.clone(),
            trust_domain: self.trust_domain.clone(),
            namespace: self.namespace.clone(),
            certificate_signing_request: csr.into_bytes(),
            token_validator: self.token.validator as i32,
            jwt_audiences: vec![],
        };
        let response = CaClient::new(channel)
            .sign_certificate(request)
            .await
            .map_err(|s| call_error(format!("{}: {}", s.code(), s.message())))?
            .into_inner();
        let chain: Vec<CertificateDer<'static>> =
            x509_parser::pem::Pem::iter_from_buffer(&response.workload_certificate)
                .filter_map(Result::ok)
                .filter(|p| p.label == "CERTIFICATE")
                .map(|p| CertificateDer::from(p.contents))
                .collect();
        let leaf = chain
            .first()
            .ok_or_else(|| SentryError::BadAnswer("no certificate".into()))?;
        let id = SpiffeId::from_cert_der(leaf)
            .ok_or_else(|| SentryError::BadAnswer("the certificate has no SPIFFE ID".into()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| SentryError::Key(e.to_string()))?;
        let valid_until = response
            .valid_until
            .ok_or_else(|| SentryError::BadAnswer("no valid_until".into()))?;
        let not_after = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(valid_until.seconds).unwrap_or(0));
        Ok(Issued {
            key: CertifiedKey::new(chain, signing),
            id,
            issued: SystemTime::now(),
            not_after,
        })
    }
}

impl SentryClient {
    /// Gets the first certificate (retrying for `wait`), then renews it at half its life
    /// for as long as the returned cell is held.
    pub async fn start(self, wait: Duration) -> Result<Arc<IdentityCell>, SentryError> {
        renewal::start::<_, ()>(self, wait, None).await
    }
}
