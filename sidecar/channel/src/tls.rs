//! TLS to the app (`--app-protocol https` / `grpcs`). As in Dapr, the app's certificate is
//! not verified: the app sits next to the sidecar and typically presents a self-signed
//! certificate; the encryption protects the hop, identity comes from the pod.

use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use thiserror::Error;

/// Why a TLS client configuration could not be built. Each message ends with the TLS
/// library's reason, which is therefore a field rather than the `source`.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The crypto provider refused the protocol versions.
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
    /// `clientTLS.rootCA` is not PEM.
    #[error("clientTLS.rootCA: {0}")]
    RootCaPem(pem::Error),
    /// A `clientTLS.rootCA` certificate cannot be a trust anchor.
    #[error("clientTLS.rootCA: {0}")]
    RootCa(rustls::Error),
    /// `clientTLS.rootCA` is set but holds no certificate.
    #[error("clientTLS.rootCA holds no certificate")]
    NoRootCa,
    /// `clientTLS.certificate` is not PEM.
    #[error("clientTLS.certificate: {0}")]
    Certificate(pem::Error),
    /// `clientTLS.privateKey` is not a PEM private key.
    #[error("clientTLS.privateKey: {0}")]
    PrivateKey(pem::Error),
    /// The client certificate and key do not go together.
    #[error("clientTLS: {0}")]
    ClientAuth(rustls::Error),
    /// Only one of `clientTLS.certificate` and `clientTLS.privateKey` is set.
    #[error("clientTLS needs both certificate and privateKey")]
    HalfClientAuth,
}

/// Accepts any certificate the app presents, but still checks the handshake signatures
/// so the connection is a real TLS session with the holder of that certificate.
#[derive(Debug)]
struct AcceptAppCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAppCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector(config: rustls::ClientConfig, h2: bool) -> HttpsConnector<HttpConnector> {
    // ALPN is set by the builder: `h2` for gRPC, `http/1.1` otherwise.
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    if h2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    }
}

fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, TlsError>
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)
}

/// The connector to the app: plain for `http`/`h2c`/`grpc`, TLS without verification for
/// `https`/`grpcs`; `h2` selects HTTP/2 by ALPN (gRPC).
pub fn app_connector(h2: bool) -> Result<HttpsConnector<HttpConnector>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAppCertificate(provider)))
        .with_no_client_auth();
    Ok(connector(config, h2))
}

/// TLS settings of a non-Dapr endpoint (`HTTPEndpoint.spec.clientTLS`), as PEM text.
#[derive(Debug, Clone, Default)]
pub struct EndpointTls {
    /// Trust anchors for the endpoint's certificate; none means no `https` endpoint
    /// can be verified, and a certificate is never accepted unverified here.
    pub root_ca: Option<String>,
    /// Client certificate and key, for endpoints that ask for one.
    pub certificate: Option<String>,
    pub private_key: Option<String>,
}

/// The connector to non-Dapr endpoints: `https` verified against `tls.root_ca`.
pub fn endpoint_connector(tls: &EndpointTls) -> Result<HttpsConnector<HttpConnector>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = &tls.root_ca {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.map_err(TlsError::RootCaPem)?)
                .map_err(TlsError::RootCa)?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoRootCa);
        }
    }
    let with_roots = builder()?.with_root_certificates(roots);
    let config = match (&tls.certificate, &tls.private_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(TlsError::Certificate)?;
            let key =
                PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(TlsError::PrivateKey)?;
            with_roots
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::ClientAuth)?
        }
        (None, None) => with_roots.with_no_client_auth(),
        _ => return Err(TlsError::HalfClientAuth),
    };
    Ok(connector(config, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_tls_errors_name_the_field() {
        let tls = |root_ca: &str| EndpointTls {
            root_ca: Some(root_ca.to_string()),
            ..Default::default()
        };
        let e = endpoint_connector(&tls("no PEM here")).expect_err("no certificate");
        assert_eq!(e.to_string(), "clientTLS.rootCA holds no certificate");
        let half = EndpointTls {
            certificate: Some(String::new()),
            ..Default::default()
        };
        let e = endpoint_connector(&half).expect_err("half");
        assert!(matches!(e, TlsError::HalfClientAuth), "{e}");
        assert!(app_connector(true).is_ok());
    }
}
