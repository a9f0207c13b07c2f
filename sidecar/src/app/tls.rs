//! TLS to the app (`--app-protocol https` / `grpcs`). As in Dapr, the app's certificate is
//! not verified: the app sits next to the sidecar and typically presents a self-signed
//! certificate; the encryption protects the hop, identity comes from the pod.

use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

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

fn builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))
}

/// The connector to the app: plain for `http`/`h2c`/`grpc`, TLS without verification for
/// `https`/`grpcs`; `h2` selects HTTP/2 by ALPN (gRPC).
pub fn app_connector(h2: bool) -> Result<HttpsConnector<HttpConnector>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAppCertificate(provider)))
        .with_no_client_auth();
    Ok(connector(config, h2))
}

/// The connector to non-Dapr endpoints: `https` URLs are verified, against the trust
/// anchors given with the endpoint's `clientTLS` once that lands, so today none succeed;
/// a certificate is never accepted unverified here.
pub fn endpoint_connector() -> Result<HttpsConnector<HttpConnector>, String> {
    let config = builder()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(connector(config, false))
}
