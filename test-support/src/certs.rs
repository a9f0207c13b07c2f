//! Real certificates for tests, made fresh per test: a self-signed root, issuers
//! (intermediates) under it laid out as Sentry's `--issuer-credentials` folder, and leaves
//! with a SPIFFE URI SAN as Sentry would sign them, as PEM and as the DER chain and key
//! rustls takes. The odd ones a verifier must refuse (expired, no SPIFFE ID, signed by a
//! non-CA) come from the same builders, so every test's PKI is built the same way.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn ca_params(common_name: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// A self-signed root CA, kept in memory so a test can mint issuers and leaves under it.
pub struct Root {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Root {
    pub fn new(common_name: &str) -> Root {
        let key = KeyPair::generate().expect("root key");
        Root {
            ca: CertifiedIssuer::self_signed(ca_params(common_name, None), key).expect("root"),
        }
    }

    /// The root certificate: what goes in `ca.crt` or `DAPR_TRUST_ANCHORS`.
    pub fn pem(&self) -> String {
        self.ca.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A rustls trust store holding only this root.
    pub fn root_store(&self) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der()).expect("root in store");
        Arc::new(roots)
    }

    /// A fresh issuer (intermediate CA, path length 0) under this root, as Sentry signs with.
    pub fn issuer(&self, common_name: &str) -> Issuer {
        let key = KeyPair::generate().expect("issuer key");
        let key_pem = key.serialize_pem();
        let ca = CertifiedIssuer::signed_by(ca_params(common_name, Some(0)), key, &self.ca)
            .expect("issuer");
        Issuer {
            cert_pem: ca.pem(),
            key_pem,
            root_pem: self.pem(),
            ca,
        }
    }

    /// A leaf signed by the root itself, with no intermediate.
    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        sign_leaf(&self.ca, &[], spec)
    }
}

/// An intermediate CA under a [`Root`], with its key: what Sentry's issuer credentials hold.
pub struct Issuer {
    ca: CertifiedIssuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
    root_pem: String,
}

impl Issuer {
    /// `issuer.crt`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// `issuer.key` (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// `ca.crt`: the root this issuer chains to.
    pub fn ca_pem(&self) -> &str {
        &self.root_pem
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// Writes `ca.crt`, `issuer.key` and `issuer.crt` into `dir` (created if missing), the
    /// folder `sentry --issuer-credentials` reads. The key goes before the certificate: a
    /// watching Sentry refuses an `issuer.crt` whose key has not arrived yet.
    pub fn write_credentials(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("credentials dir");
        std::fs::write(dir.join("ca.crt"), &self.root_pem).expect("ca.crt");
        std::fs::write(dir.join("issuer.key"), &self.key_pem).expect("issuer.key");
        std::fs::write(dir.join("issuer.crt"), &self.cert_pem).expect("issuer.crt");
    }

    /// A workload certificate for `spiffe://<trust_domain>/ns/<namespace>/<app_id>`, valid now.
    pub fn workload(&self, trust_domain: &str, namespace: &str, app_id: &str) -> Leaf {
        self.leaf(&LeafSpec::spiffe(trust_domain, namespace, app_id))
    }

    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        sign_leaf(&self.ca, std::slice::from_ref(self.ca.der()), spec)
    }
}

/// What a leaf says about itself. The default has no names at all.
#[derive(Debug, Clone, Default)]
pub struct LeafSpec {
    uris: Vec<String>,
    dns_names: Vec<String>,
    expired: bool,
}

impl LeafSpec {
    /// A leaf whose only URI SAN is Dapr's SPIFFE ID.
    pub fn spiffe(trust_domain: &str, namespace: &str, app_id: &str) -> LeafSpec {
        LeafSpec::default().uri(&format!("spiffe://{trust_domain}/ns/{namespace}/{app_id}"))
    }

    pub fn uri(mut self, uri: &str) -> LeafSpec {
        self.uris.push(uri.to_string());
        self
    }

    pub fn dns(mut self, name: &str) -> LeafSpec {
        self.dns_names.push(name.to_string());
        self
    }

    /// Valid for one day in 2000, so long expired.
    pub fn expired(mut self) -> LeafSpec {
        self.expired = true;
        self
    }
}

fn sign_leaf(
    issuer: &rcgen::Issuer<'static, KeyPair>,
    above: &[CertificateDer<'static>],
    spec: &LeafSpec,
) -> Leaf {
    let key = KeyPair::generate().expect("leaf key");
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    for uri in &spec.uris {
        let uri = rcgen::string::Ia5String::try_from(uri.as_str()).expect("ASCII URI");
        p.subject_alt_names.push(SanType::URI(uri));
    }
    for name in &spec.dns_names {
        let name = rcgen::string::Ia5String::try_from(name.as_str()).expect("ASCII name");
        p.subject_alt_names.push(SanType::DnsName(name));
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
    if spec.expired {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2000, 1, 2);
    }
    let cert = p.signed_by(&key, issuer).expect("leaf");
    let mut chain = vec![cert.der().clone()];
    chain.extend(above.iter().cloned());
    let key_pem = key.serialize_pem();
    let key_der = key.serialize_der();
    Leaf {
        cert_pem: cert.pem(),
        key_pem,
        key_der,
        chain,
        issuer: rcgen::Issuer::new(p, key),
    }
}

/// An end-entity certificate and its key, with the chain a peer presents (the leaf, then
/// any intermediates; never the root).
pub struct Leaf {
    cert_pem: String,
    key_pem: String,
    key_der: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    /// For [`Leaf::leaf`] only: a leaf is no CA, and a leaf it signs must be refused.
    issuer: rcgen::Issuer<'static, KeyPair>,
}

impl Leaf {
    /// The leaf alone.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The leaf then its intermediates, as Sentry's `workload_certificate` carries them.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }

    /// The leaf's key, PKCS#8.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        self.chain.clone()
    }

    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The chain and key as rustls serves or presents them (ring signer).
    pub fn certified_key(&self) -> rustls::sign::CertifiedKey {
        let signing =
            rustls::crypto::ring::sign::any_supported_type(&self.key_der()).expect("signing key");
        rustls::sign::CertifiedKey::new(self.chain_der(), signing)
    }

    /// A leaf signed by this (non-CA) leaf, its chain carrying this leaf and what is above
    /// it: a chain every verifier must refuse.
    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        sign_leaf(&self.issuer, &self.chain, spec)
    }
}

/// A self-signed certificate for `names` (DNS), the kind an app serving TLS on its own
/// would have: the certificate is its own trust anchor.
pub fn self_signed(names: &[&str]) -> Leaf {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.clone()).expect("self-signed");
    let params = CertificateParams::new(names).expect("params");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: signing_key.serialize_pem(),
        key_der: signing_key.serialize_der(),
        chain: vec![cert.der().clone()],
        issuer: rcgen::Issuer::new(params, signing_key),
    }
}

/// A PEM PKCS#10 request for `key`, with no names: what a Dapr workload sends Sentry.
pub fn csr_pem(key: &KeyPair) -> Vec<u8> {
    CertificateParams::default()
        .serialize_request(key)
        .expect("csr")
        .pem()
        .expect("csr pem")
        .into_bytes()
}

/// [`csr_pem`] with one bit of its signature flipped: well formed, but forged.
pub fn forged_csr_pem(key: &KeyPair) -> Vec<u8> {
    let mut der = CertificateParams::default()
        .serialize_request(key)
        .expect("csr")
        .der()
        .to_vec();
    // The signature is the last element of the request: flip a bit near the end.
    let n = der.len();
    der[n - 3] ^= 0x01;
    pem("CERTIFICATE REQUEST", &der).into_bytes()
}

/// One PEM block, 64 columns.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
