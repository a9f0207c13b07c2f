//! TLS configurations for mTLS between Dapr processes. The certificate lives in an
//! `IdentityCell` that renewal swaps, so existing connections keep going and new
//! handshakes use the new certificate. Chains are verified against the trust anchors;
//! peers are told apart by SPIFFE ID, not host name.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tonic::transport::{Channel, Endpoint};

use crate::SpiffeId;

/// This process's current certificate and key, shared by its servers and clients.
#[derive(Debug)]
pub struct IdentityCell {
    current: ArcSwap<CertifiedKey>,
    id: SpiffeId,
}

impl IdentityCell {
    pub fn new(key: CertifiedKey, id: SpiffeId) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(key),
            id,
        })
    }

    pub fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }

    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for IdentityCell {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for IdentityCell {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

type Accept = Arc<dyn Fn(&SpiffeId) -> bool + Send + Sync>;

/// Verifies a server's chain against the trust anchors, then its SPIFFE ID.
struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    accept: Accept,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for SpiffeServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeServerVerifier")
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let id = SpiffeId::from_cert_der(end_entity)
            .ok_or_else(|| Error::General("the peer certificate has no SPIFFE ID".into()))?;
        if !(self.accept)(&id) {
            return Err(Error::General(format!("unexpected peer identity {id}")));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// A server that requires a client certificate chaining to `roots`; the caller reads the
/// client's SPIFFE ID from the connection afterwards.
pub fn server_config(
    identity: Arc<IdentityCell>,
    roots: Arc<RootCertStore>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let verifier = WebPkiClientVerifier::builder(roots)
        .build()
        .map_err(|e| Error::General(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A client that presents `identity` (when given) and accepts only servers whose chain
/// reaches `roots` and whose SPIFFE ID satisfies `accept`.
pub fn client_config(
    identity: Option<Arc<IdentityCell>>,
    roots: Arc<RootCertStore>,
    accept: impl Fn(&SpiffeId) -> bool + Send + Sync + 'static,
) -> Arc<rustls::ClientConfig> {
    let verifier = Arc::new(SpiffeServerVerifier {
        roots,
        accept: Arc::new(accept),
        algorithms: algorithms(),
    });
    let builder = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(cell) => builder.with_client_cert_resolver(cell),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// The SPIFFE ID of the peer's leaf certificate.
pub fn peer_id(certs: &[CertificateDer<'_>]) -> Option<SpiffeId> {
    SpiffeId::from_cert_der(certs.first()?)
}

/// A lazily connecting gRPC channel to `address` (`host:port`) over TLS with `config`.
pub fn channel_with_tls(
    address: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5));
    let address = address.to_string();
    let connector = tower::service_fn(move |_uri: http_uri::Uri| {
        let config = config.clone();
        let address = address.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&address).await?;
            tcp.set_nodelay(true)?;
            // Peers are verified by SPIFFE ID; the name only has to be well formed.
            let host = address
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']))
                .unwrap_or(&address);
            let name = ServerName::try_from(host.to_string())
                .unwrap_or_else(|_| ServerName::try_from("dapr.local").expect("static name"));
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

mod http_uri {
    pub use tonic::codegen::http::Uri;
}

/// TLS connections accepted on `listener`, ready for tonic's `serve_with_incoming`. A
/// handshake that fails (wrong root, expired or missing certificate) or stalls is dropped
/// on its own, without holding up others.
pub fn accept_stream(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> incoming::Incoming {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            if tx.is_closed() {
                return;
            }
            let acceptor = acceptor.clone();
            let conn_tx = tx.clone();
            tokio::spawn(async move {
                let handshake = acceptor.accept(tcp);
                match tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await {
                    Ok(Ok(tls)) => {
                        let _ = conn_tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::info!("TLS handshake with {peer} refused: {e}"),
                    Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                }
            });
        }
    });
    incoming::Incoming { rx }
}

/// A minimal stream over the accepted connections (tonic wants a `Stream`).
pub mod incoming {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub type Conn = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

    pub struct Incoming {
        pub(super) rx: tokio::sync::mpsc::Receiver<Result<Conn, std::io::Error>>,
    }

    impl futures_core::Stream for Incoming {
        type Item = Result<Conn, std::io::Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.rx.poll_recv(cx)
        }
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
