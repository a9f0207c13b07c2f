//! `dapr.proto.sentry.v1.CA` over TLS. Sentry serves with a certificate of its own
//! (`spiffe://<trust domain>/ns/<namespace>/dapr-sentry`) signed by the current issuer and
//! re-issued when the bundle changes or half its life has passed, without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use proto::sentry::v1 as pb;
use proto::sentry::v1::ca_server::Ca;
use proto::sentry::v1::sign_certificate_request::TokenValidator;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tonic::{Request, Response, Status};

use crate::ca::{self, Authority, SignError};
use crate::config::SigningConfig;
use crate::trust::Trust;
use crate::validator::{self, Claim, KubernetesValidator, Refusal};

/// What the metrics endpoint reports.
#[derive(Default)]
pub struct Counters {
    pub signed: AtomicU64,
    pub refused: AtomicU64,
}

pub struct CaService {
    trust: Arc<Trust>,
    signing: SigningConfig,
    kubernetes: Option<KubernetesValidator>,
    counters: Arc<Counters>,
}

impl CaService {
    pub fn new(
        trust: Arc<Trust>,
        signing: SigningConfig,
        kubernetes: Option<KubernetesValidator>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            trust,
            signing,
            kubernetes,
            counters,
        }
    }

    async fn validate(
        &self,
        r: &pb::SignCertificateRequest,
    ) -> Result<validator::Identity, Status> {
        if !validator::valid_name(&r.id) {
            return Err(Status::invalid_argument(format!("invalid id {:?}", r.id)));
        }
        if !validator::valid_name(&r.namespace) {
            return Err(Status::invalid_argument(format!(
                "invalid namespace {:?}",
                r.namespace
            )));
        }
        if r.certificate_signing_request.is_empty() {
            return Err(Status::invalid_argument(
                "a certificate signing request is required",
            ));
        }
        let claim = Claim {
            id: r.id.clone(),
            namespace: r.namespace.clone(),
            trust_domain: r.trust_domain.clone(),
            token: r.token.clone(),
        };
        let chosen = TokenValidator::try_from(r.token_validator).unwrap_or(TokenValidator::Unknown);
        let result = match (chosen, &self.kubernetes) {
            // Unset means the deployment's default: Kubernetes when Sentry runs there.
            (TokenValidator::Kubernetes | TokenValidator::Unknown, Some(k)) => {
                k.validate(&claim).await
            }
            (TokenValidator::Insecure | TokenValidator::Unknown, None) => {
                validator::insecure(&claim)
            }
            (TokenValidator::Insecure, Some(_)) => Err(Refusal::Denied(
                "the INSECURE validator is not enabled in Kubernetes mode".into(),
            )),
            (TokenValidator::Kubernetes, None) => Err(Refusal::Denied(
                "the KUBERNETES validator is not enabled in standalone mode".into(),
            )),
            (TokenValidator::Jwks, _) => Err(Refusal::Denied(
                "the JWKS validator is not supported".into(),
            )),
        };
        result.map_err(|e| match e {
            Refusal::BadRequest(m) => Status::invalid_argument(m),
            Refusal::Denied(m) => Status::permission_denied(m),
            Refusal::Backend(m) => Status::unavailable(m),
        })
    }
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

#[tonic::async_trait]
impl Ca for CaService {
    async fn sign_certificate(
        &self,
        request: Request<pb::SignCertificateRequest>,
    ) -> Result<Response<pb::SignCertificateResponse>, Status> {
        let r = request.into_inner();
        let outcome = async {
            let identity = self.validate(&r).await?;
            let authority = self.trust.current();
            let signed = authority
                .sign(
                    &r.certificate_signing_request,
                    &identity.spiffe_id(),
                    &[],
                    self.signing.workload_cert_ttl,
                    self.signing.allowed_clock_skew,
                )
                .map_err(|e| match e {
                    SignError::Signing(m) => Status::internal(m),
                    other => Status::invalid_argument(other.to_string()),
                })?;
            tracing::debug!(id = %identity.spiffe_id(), "signed a workload certificate");
            Ok::<_, Status>(pb::SignCertificateResponse {
                workload_certificate: signed.chain_pem.into_bytes(),
                trust_chain_certificates: authority
                    .roots_pem()
                    .into_iter()
                    .map(String::into_bytes)
                    .collect(),
                valid_until: Some(timestamp(signed.not_after)),
                jwt: None,
                per_audience_jwts: Default::default(),
            })
        }
        .await;
        match &outcome {
            Ok(_) => self.counters.signed.fetch_add(1, Ordering::Relaxed),
            Err(s) => {
                tracing::info!(id = %r.id, namespace = %r.namespace, "refused: {}", s.message());
                self.counters.refused.fetch_add(1, Ordering::Relaxed)
            }
        };
        outcome.map(Response::new)
    }
}

/// Sentry's own serving certificate, swapped in place as it is renewed.
#[derive(Debug)]
pub struct ServingCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Issues Sentry's own certificate from the current authority.
fn issue_serving_cert(
    authority: &Authority,
    spiffe_id: &str,
    dns_names: &[String],
    ttl: Duration,
) -> anyhow::Result<(CertifiedKey, SystemTime)> {
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::default().serialize_request(&key)?;
    let signed = authority.sign(
        csr.pem()?.as_bytes(),
        spiffe_id,
        dns_names,
        ttl,
        Duration::from_secs(15 * 60),
    )?;
    let chain: Vec<CertificateDer<'static>> = ca::certificates_der(&signed.chain_pem)
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)?;
    let expires = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(signed.not_after.unix_timestamp()).unwrap_or(0));
    Ok((CertifiedKey::new(chain, signing), expires))
}

/// Sentry's TLS configuration, and the task that keeps its certificate fresh.
pub fn serving_tls(
    trust: Arc<Trust>,
    spiffe_id: String,
    dns_names: Vec<String>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    const OWN_TTL: Duration = Duration::from_secs(24 * 3600);
    let (first, mut expires) =
        issue_serving_cert(&trust.current(), &spiffe_id, &dns_names, OWN_TTL)?;
    let resolver = Arc::new(ServingCert(ArcSwap::from_pointee(first)));
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut changes = trust.changes();
    tokio::spawn(async move {
        loop {
            let half_life = expires
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                / 2;
            tokio::select! {
                _ = tokio::time::sleep(half_life.max(Duration::from_secs(1))) => {}
                changed = changes.changed() => if changed.is_err() { return },
            }
            match issue_serving_cert(&trust.current(), &spiffe_id, &dns_names, OWN_TTL) {
                Ok((cert, until)) => {
                    resolver.0.store(Arc::new(cert));
                    expires = until;
                    tracing::info!("renewed Sentry's own certificate");
                }
                Err(e) => tracing::error!("renewing Sentry's own certificate: {e:#}"),
            }
        }
    });
    Ok(Arc::new(config))
}
