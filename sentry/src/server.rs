//! `dapr.proto.sentry.v1.CA` over TLS. Sentry serves with a certificate of its own
//! (`spiffe://<trust domain>/ns/<namespace>/dapr-sentry`) signed by the current issuer and
//! re-issued when the bundle changes or half its life has passed, without a restart
//! (`security`'s renewal loop, as every other Dapr process's certificate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use proto::sentry::v1 as pb;
use proto::sentry::v1::ca_server::Ca;
use proto::sentry::v1::sign_certificate_request::TokenValidator;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use security::SpiffeId;
use security::renewal::{self, Issued, Issuer};
use tonic::{Request, Response, Status};

use crate::ca::{self, SignError};
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
    /// Sentry's own namespace: the control plane's, whose services get DNS names.
    namespace: String,
}

/// The DNS names Dapr's Sentry puts in a control-plane service's certificate, so that the
/// API server can reach its webhooks by Service name: the injector's and the operator's
/// webhook Services, and the scheduler's StatefulSet members.
pub fn control_plane_dns(own_namespace: &str, namespace: &str, id: &str) -> Vec<String> {
    if namespace != own_namespace {
        return Vec::new();
    }
    match id {
        "dapr-injector" => vec![format!("dapr-sidecar-injector.{namespace}.svc")],
        "dapr-operator" => vec![format!("dapr-webhook.{namespace}.svc")],
        "dapr-scheduler" => (0..3)
            .map(|i| {
                format!(
                    "dapr-scheduler-server-{i}.dapr-scheduler-server.{namespace}.svc.cluster.local"
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl CaService {
    pub fn new(
        trust: Arc<Trust>,
        signing: SigningConfig,
        kubernetes: Option<KubernetesValidator>,
        counters: Arc<Counters>,
        namespace: String,
    ) -> Self {
        Self {
            trust,
            signing,
            kubernetes,
            counters,
            namespace,
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
            let dns = control_plane_dns(&self.namespace, &identity.namespace, &identity.id);
            let signed = authority
                .sign(
                    &r.certificate_signing_request,
                    &identity.spiffe_id(),
                    &dns,
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

/// Sentry's own certificate, issued by its current authority (Sentry cannot ask itself
/// over the wire), renewed at half its life or when the trust bundle changes.
struct OwnCertificate {
    trust: Arc<Trust>,
    spiffe_id: String,
    dns_names: Vec<String>,
}

/// How long Sentry's own certificate lives.
const OWN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why Sentry could not issue its own certificate.
#[derive(Debug, thiserror::Error)]
pub enum OwnCertError {
    #[error("creating Sentry's key or CSR: {0}")]
    Key(#[from] rcgen::Error),
    #[error("signing Sentry's certificate: {0}")]
    Sign(#[from] SignError),
    #[error("loading Sentry's key: {0}")]
    Load(#[from] rustls::Error),
    #[error("Sentry's certificate has no SPIFFE ID")]
    NoSpiffeId,
}

impl Issuer for OwnCertificate {
    type Error = OwnCertError;
    const KIND: &'static str = "serving certificate";

    async fn issue(&self) -> Result<Issued, OwnCertError> {
        let authority = self.trust.current();
        let key = rcgen::KeyPair::generate()?;
        let csr = rcgen::CertificateParams::default().serialize_request(&key)?;
        let signed = authority.sign(
            csr.pem()?.as_bytes(),
            &self.spiffe_id,
            &self.dns_names,
            OWN_TTL,
            Duration::from_secs(15 * 60),
        )?;
        let chain: Vec<CertificateDer<'static>> = ca::certificates_der(&signed.chain_pem)
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let id = chain
            .first()
            .and_then(|c| SpiffeId::from_cert_der(c))
            .ok_or(OwnCertError::NoSpiffeId)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)?;
        let not_after = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(signed.not_after.unix_timestamp()).unwrap_or(0));
        Ok(Issued {
            key: CertifiedKey::new(chain, signing),
            id,
            issued: SystemTime::now(),
            not_after,
        })
    }
}

/// Sentry's TLS configuration; its certificate stays fresh for as long as the
/// configuration is in use.
pub async fn serving_tls(
    trust: Arc<Trust>,
    spiffe_id: String,
    dns_names: Vec<String>,
) -> Result<Arc<rustls::ServerConfig>, OwnCertError> {
    let changes = trust.changes();
    let own = OwnCertificate {
        trust,
        spiffe_id,
        dns_names,
    };
    let cell = renewal::start(own, Duration::ZERO, Some(changes)).await?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(cell);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
