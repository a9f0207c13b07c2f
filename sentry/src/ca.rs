//! The signing core: a root and an issuer, and the rules a workload certificate follows.
//! Everything that arrives here (CSR bytes, ids) is untrusted.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType, SerialNumber,
};
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

/// id-ecPublicKey and the prime256v1 curve: the only key Sentry signs for.
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// Generated roots and issuers live a year, as Dapr's.
const GENERATED_CA_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Error)]
pub enum SignError {
    #[error("the certificate signing request is not valid PEM or PKCS#10")]
    MalformedCsr,
    #[error("the certificate signing request's signature does not verify")]
    BadCsrSignature,
    #[error("only ECDSA P-256 keys are signed")]
    UnsupportedKey,
    #[error("invalid identity {0:?}")]
    InvalidId(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

fn invalid(what: &'static str, reason: impl std::fmt::Display) -> BundleError {
    BundleError::Invalid {
        what,
        reason: reason.to_string(),
    }
}

/// PEM text of a trust bundle, as stored in files or the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub ca_crt: String,
    pub issuer_crt: String,
    pub issuer_key: String,
}

/// A workload certificate: PEM leaf then issuer, and when it stops being valid.
#[derive(Debug, Clone)]
pub struct Signed {
    pub chain_pem: String,
    pub not_after: OffsetDateTime,
}

/// A loaded, checked trust bundle that can sign.
pub struct Authority {
    credentials: Credentials,
    issuer: Issuer<'static, KeyPair>,
    issuer_not_after: OffsetDateTime,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("issuer_not_after", &self.issuer_not_after)
            .finish_non_exhaustive()
    }
}

fn ca_params(common_name: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dapr.io");
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(15);
    p.not_after = now + GENERATED_CA_LIFETIME;
    p.serial_number = Some(random_serial());
    p
}

fn random_serial() -> SerialNumber {
    let mut bytes = uuid::Uuid::new_v4().into_bytes();
    // Positive, as DER INTEGER serials must be.
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// A new self-signed root and an issuer under it, for a deployment that has none yet.
pub fn generate(trust_domain: &str) -> Result<Credentials, BundleError> {
    let root_key = KeyPair::generate().map_err(|e| invalid("root key", e))?;
    let root = CertifiedIssuer::self_signed(ca_params(trust_domain, None), root_key)
        .map_err(|e| invalid("root certificate", e))?;
    let issuer_key = KeyPair::generate().map_err(|e| invalid("issuer key", e))?;
    let key_pem = issuer_key.serialize_pem();
    let issuer = CertifiedIssuer::signed_by(ca_params(trust_domain, Some(0)), issuer_key, &root)
        .map_err(|e| invalid("issuer certificate", e))?;
    Ok(Credentials {
        ca_crt: root.pem(),
        issuer_crt: issuer.pem(),
        issuer_key: key_pem,
    })
}

fn first_der(pem_text: &str, what: &'static str) -> Result<Vec<u8>, BundleError> {
    let blocks = x509_parser::pem::Pem::iter_from_buffer(pem_text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, e))?;
    blocks
        .into_iter()
        .find(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .ok_or_else(|| invalid(what, "no CERTIFICATE block"))
}

/// Every certificate in a PEM bundle, as DER.
pub fn certificates_der(pem_text: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem_text.as_bytes())
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

impl Authority {
    /// Checks the bundle hangs together (the issuer is a CA signed by one of the roots
    /// and the key is the issuer's) before it is used to sign anything.
    pub fn load(credentials: Credentials) -> Result<Self, BundleError> {
        let issuer_der = first_der(&credentials.issuer_crt, "issuer.crt")?;
        let (_, issuer_cert) =
            X509Certificate::from_der(&issuer_der).map_err(|e| invalid("issuer.crt", e))?;
        if !issuer_cert.is_ca() {
            return Err(invalid("issuer.crt", "not a CA certificate"));
        }
        let roots = certificates_der(&credentials.ca_crt);
        if roots.is_empty() {
            return Err(invalid("ca.crt", "no certificates"));
        }
        let chained = roots.iter().any(|r| {
            X509Certificate::from_der(r)
                .map(|(_, root)| {
                    issuer_cert
                        .verify_signature(Some(root.public_key()))
                        .is_ok()
                })
                .unwrap_or(false)
        });
        if !chained {
            return Err(invalid(
                "issuer.crt",
                "not signed by any certificate in ca.crt",
            ));
        }
        let key =
            KeyPair::from_pem(&credentials.issuer_key).map_err(|e| invalid("issuer.key", e))?;
        if rcgen::PublicKeyData::subject_public_key_info(&key) != issuer_cert.public_key().raw {
            return Err(invalid("issuer.key", "does not match issuer.crt"));
        }
        let issuer_not_after = issuer_cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_pem(&credentials.issuer_crt, key)
            .map_err(|e| invalid("issuer.crt", e))?;
        Ok(Self {
            credentials,
            issuer,
            issuer_not_after,
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The trust anchors, one PEM certificate each.
    pub fn roots_pem(&self) -> Vec<String> {
        certificates_der(&self.credentials.ca_crt)
            .into_iter()
            .map(|der| pem_block(&der))
            .collect()
    }

    /// Signs a workload's CSR for `spiffe_id`. The CSR contributes only its public key:
    /// names, usages and lifetime are Sentry's, whatever the request asked for.
    pub fn sign(
        &self,
        csr_pem: &[u8],
        spiffe_id: &str,
        dns_names: &[String],
        ttl: Duration,
        clock_skew: Duration,
    ) -> Result<Signed, SignError> {
        let text = std::str::from_utf8(csr_pem).map_err(|_| SignError::MalformedCsr)?;
        let der = x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
            .filter_map(Result::ok)
            .find(|p| p.label == "CERTIFICATE REQUEST" || p.label == "NEW CERTIFICATE REQUEST")
            .map(|p| p.contents)
            .ok_or(SignError::MalformedCsr)?;
        check_p256(&der)?;
        let csr = CertificateSigningRequestParams::from_der(&der.as_slice().into()).map_err(
            |e| match e {
                rcgen::Error::InvalidCertificationRequestSignature => SignError::BadCsrSignature,
                _ => SignError::MalformedCsr,
            },
        )?;
        let uri = rcgen::string::Ia5String::try_from(spiffe_id.to_string())
            .map_err(|_| SignError::InvalidId(spiffe_id.to_string()))?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::URI(uri)];
        for name in dns_names {
            let dns = rcgen::string::Ia5String::try_from(name.clone())
                .map_err(|_| SignError::InvalidId(name.clone()))?;
            p.subject_alt_names.push(SanType::DnsName(dns));
        }
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        p.not_before = now - clock_skew;
        // Never outlive the issuer: a chain with an expired middle fails anyway.
        p.not_after = (now + ttl).min(self.issuer_not_after);
        p.serial_number = Some(random_serial());
        let leaf = p
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(|e| SignError::Signing(e.to_string()))?;
        let mut chain_pem = leaf.pem();
        chain_pem.push_str(&self.credentials.issuer_crt);
        if !chain_pem.ends_with('\n') {
            chain_pem.push('\n');
        }
        Ok(Signed {
            chain_pem,
            not_after: p.not_after,
        })
    }
}

/// Refuses anything but an ECDSA key on P-256, before the signature is even checked.
fn check_p256(der: &[u8]) -> Result<(), SignError> {
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|_| SignError::MalformedCsr)?;
    let spki = &csr.certification_request_info.subject_pki;
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY {
        return Err(SignError::UnsupportedKey);
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if curve.as_deref() != Some(OID_P256) {
        return Err(SignError::UnsupportedKey);
    }
    Ok(())
}

/// One DER certificate as PEM.
pub fn pem_block(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
#[path = "ca_tests.rs"]
mod tests;
