//! The signing core with real keys and CSRs: what a signed leaf says, how long it lives,
//! that it chains to the root as a TLS peer would check it, and which inputs are refused
//! with which error.

use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, UnixTime};
use test_support::certs::{self, LeafSpec, Root};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

const ID: &str = "spiffe://public/ns/shop/orders";
const HOUR: Duration = Duration::from_secs(3600);

fn authority() -> Authority {
    Authority::load(generate("cp.example").expect("bundle")).expect("authority")
}

fn fixture_credentials(root: &Root, issuer: &certs::Issuer) -> Credentials {
    Credentials {
        ca_crt: root.pem(),
        issuer_crt: issuer.cert_pem().to_string(),
        issuer_key: issuer.key_pem().to_string(),
    }
}

/// (URIs, DNS names) of a certificate's SAN extension.
fn sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let (mut uris, mut dns) = (Vec::new(), Vec::new());
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                match name {
                    GeneralName::URI(u) => uris.push(u.to_string()),
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    _ => {}
                }
            }
        }
    }
    (uris, dns)
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Verifies `chain` (leaf first) against `roots_pem` the way the sidecars' rustls does.
fn webpki_verifies(chain: &[Vec<u8>], roots_pem: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for der in certificates_der(roots_pem) {
        roots.add(CertificateDer::from(der)).expect("root");
    }
    let leaf = CertificateDer::from(chain[0].clone());
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let parsed = rustls::server::ParsedCertificate::try_from(&leaf)?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &intermediates,
        UnixTime::now(),
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all,
    )
}

#[test]
fn a_signed_leaf_has_the_requested_id_and_names_and_sentrys_rules() {
    let authority = authority();
    let key = KeyPair::generate().expect("key");
    let dns = vec!["orders.shop.svc".to_string(), "localhost".to_string()];
    let signed = authority
        .sign(&certs::csr_pem(&key), ID, &dns, 2 * HOUR, 10 * 60 * SECOND)
        .expect("signed");
    let chain = certificates_der(&signed.chain_pem);
    assert_eq!(chain.len(), 2, "leaf then issuer");
    assert_eq!(
        chain[1],
        certificates_der(&authority.credentials().issuer_crt)[0]
    );
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert_eq!(sans(&leaf), (vec![ID.to_string()], dns));
    assert!(!leaf.is_ca());
    assert_eq!(
        leaf.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key),
        "the CSR's key"
    );
    let eku = leaf
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.server_auth && eku.client_auth);
    let ku = leaf.key_usage().expect("ku").expect("present").value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    assert!(
        leaf.subject().iter_attributes().next().is_none(),
        "no subject"
    );
    let nb = leaf.validity().not_before.timestamp();
    let na = leaf.validity().not_after.timestamp();
    assert!(
        (nb - (now() - 600)).abs() <= 5,
        "not_before is now minus the skew"
    );
    assert!(
        (na - (now() + 7200)).abs() <= 5,
        "not_after is now plus the TTL"
    );
    assert_eq!(signed.not_after.unix_timestamp(), na);
    webpki_verifies(&chain, &authority.credentials().ca_crt).expect("chains to the root");
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn what_the_csr_asks_for_beyond_its_key_is_ignored() {
    let authority = authority();
    let key = KeyPair::generate().expect("key");
    let mut asked = CertificateParams::new(vec!["evil.example".to_string()]).expect("params");
    asked
        .distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    asked.subject_alt_names.push(SanType::URI(
        rcgen::string::Ia5String::try_from("spiffe://public/ns/kube-system/admin").expect("uri"),
    ));
    asked.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = asked
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let signed = authority
        .sign(csr.as_bytes(), ID, &[], HOUR, Duration::ZERO)
        .expect("signed");
    let chain = certificates_der(&signed.chain_pem);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    assert_eq!(sans(&leaf), (vec![ID.to_string()], vec![]));
    assert!(!leaf.is_ca());
    assert!(!leaf.subject().to_string().contains("admin"));
}

#[test]
fn a_zero_skew_starts_now_and_a_long_ttl_stops_at_the_issuers_end() {
    let authority = authority();
    let key = KeyPair::generate().expect("key");
    let ten_years = 10 * 365 * 24 * HOUR;
    let signed = authority
        .sign(&certs::csr_pem(&key), ID, &[], ten_years, Duration::ZERO)
        .expect("signed");
    let chain = certificates_der(&signed.chain_pem);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).expect("leaf");
    let (_, issuer) = X509Certificate::from_der(&chain[1]).expect("issuer");
    assert!((leaf.validity().not_before.timestamp() - now()).abs() <= 5);
    assert_eq!(
        leaf.validity().not_after.timestamp(),
        issuer.validity().not_after.timestamp(),
        "never outlives the issuer"
    );
    assert_eq!(signed.not_after, authority.issuer_not_after);
}

#[test]
fn a_bundle_made_elsewhere_loads_and_its_leaves_chain_to_its_root() {
    let root = Root::new("external-root");
    let issuer = root.issuer("external-issuer");
    let authority = Authority::load(fixture_credentials(&root, &issuer)).expect("authority");
    assert_eq!(authority.roots_pem(), vec![root.pem()]);
    let key = KeyPair::generate().expect("key");
    let signed = authority
        .sign(&certs::csr_pem(&key), ID, &[], HOUR, SECOND)
        .expect("signed");
    let chain = certificates_der(&signed.chain_pem);
    webpki_verifies(&chain, &root.pem()).expect("chains to the external root");
    let other = Root::new("someone-else");
    assert!(
        webpki_verifies(&chain, &other.pem()).is_err(),
        "and to no other"
    );
}

#[test]
fn bad_requests_are_refused_with_the_matching_error() {
    let authority = authority();
    let key = KeyPair::generate().expect("key");
    let good = certs::csr_pem(&key);
    let csr_der = ders_of(&good);
    let truncated = pem_of("CERTIFICATE REQUEST", &csr_der[..csr_der.len() / 2]);
    let junk = pem_of("CERTIFICATE REQUEST", b"\x30\x03\x02\x01\x00");
    let a_certificate = Root::new("not-a-csr").pem();
    let p384 =
        certs::csr_pem(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("p384"));
    let ed25519 = certs::csr_pem(&KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519"));
    let forged = certs::forged_csr_pem(&key);
    let cases: Vec<RefusalCase> = vec![
        ("garbage", b"not a csr", |e| {
            matches!(e, SignError::MalformedCsr)
        }),
        ("empty", b"", |e| matches!(e, SignError::MalformedCsr)),
        ("not UTF-8", b"\xff\xfe\xfd", |e| {
            matches!(e, SignError::MalformedCsr)
        }),
        (
            "a certificate, not a request",
            a_certificate.as_bytes(),
            |e| matches!(e, SignError::MalformedCsr),
        ),
        ("PEM around junk", junk.as_bytes(), |e| {
            matches!(e, SignError::MalformedCsr)
        }),
        ("a truncated request", truncated.as_bytes(), |e| {
            matches!(e, SignError::MalformedCsr)
        }),
        ("a forged signature", &forged, |e| {
            matches!(e, SignError::BadCsrSignature)
        }),
        ("a P-384 key", &p384, |e| {
            matches!(e, SignError::UnsupportedKey)
        }),
        ("an Ed25519 key", &ed25519, |e| {
            matches!(e, SignError::UnsupportedKey)
        }),
    ];
    for (what, csr, expected) in cases {
        let err = authority.sign(csr, ID, &[], HOUR, SECOND).expect_err(what);
        assert!(expected(&err), "{what}: {err:?}");
    }
    // The same good request still signs.
    authority.sign(&good, ID, &[], HOUR, SECOND).expect("good");
}

#[test]
fn names_that_cannot_be_written_into_a_certificate_are_refused() {
    let authority = authority();
    let csr = certs::csr_pem(&KeyPair::generate().expect("key"));
    let err = authority
        .sign(&csr, "spiffe://public/ns/shop/cafés", &[], HOUR, SECOND)
        .expect_err("non-ASCII id");
    assert!(
        matches!(&err, SignError::InvalidId(id) if id.contains("caf")),
        "{err:?}"
    );
    let err = authority
        .sign(&csr, ID, &["bücher.example".to_string()], HOUR, SECOND)
        .expect_err("non-ASCII DNS name");
    assert!(
        matches!(&err, SignError::InvalidId(n) if n == "bücher.example"),
        "{err:?}"
    );
}

fn ders_of(pem: &[u8]) -> Vec<u8> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .next()
        .expect("a block")
        .expect("pem")
        .contents
}

fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

fn load_error(c: Credentials) -> (&'static str, String) {
    match Authority::load(c) {
        Ok(_) => panic!("loaded"),
        Err(BundleError::Invalid { what, reason }) => (what, reason),
    }
}

#[test]
fn a_bundle_that_does_not_hang_together_is_refused() {
    let root = Root::new("r");
    let issuer = root.issuer("i");
    let good = fixture_credentials(&root, &issuer);
    let leaf = issuer.leaf(&LeafSpec::spiffe("public", "shop", "orders"));
    let cases = [
        (
            "an issuer that is not a CA",
            Credentials {
                issuer_crt: leaf.cert_pem().to_string(),
                issuer_key: leaf.key_pem().to_string(),
                ..good.clone()
            },
            ("issuer.crt", "not a CA"),
        ),
        (
            "an issuer from another root",
            Credentials {
                ca_crt: Root::new("other").pem(),
                ..good.clone()
            },
            ("issuer.crt", "not signed by"),
        ),
        (
            "a key that is not the issuer's",
            Credentials {
                issuer_key: KeyPair::generate().expect("key").serialize_pem(),
                ..good.clone()
            },
            ("issuer.key", "does not match"),
        ),
        (
            "no roots",
            Credentials {
                ca_crt: String::new(),
                ..good.clone()
            },
            ("ca.crt", "no certificates"),
        ),
        (
            "no issuer certificate",
            Credentials {
                issuer_crt: good.issuer_key.clone(),
                ..good.clone()
            },
            ("issuer.crt", "no CERTIFICATE block"),
        ),
        (
            "an unreadable key",
            Credentials {
                issuer_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
                ..good.clone()
            },
            ("issuer.key", ""),
        ),
    ];
    for (what, credentials, (file, reason)) in cases {
        let (got_file, got_reason) = load_error(credentials);
        assert_eq!(got_file, file, "{what}: {got_reason}");
        assert!(got_reason.contains(reason), "{what}: {got_reason}");
    }
    Authority::load(good).expect("the untouched bundle loads");
}

#[test]
fn any_root_in_ca_crt_may_be_the_issuers() {
    let (old, new) = (Root::new("old"), Root::new("new"));
    let issuer = new.issuer("i");
    let credentials = Credentials {
        ca_crt: format!("{}{}", old.pem(), new.pem()),
        ..fixture_credentials(&new, &issuer)
    };
    let authority = Authority::load(credentials).expect("authority");
    assert_eq!(authority.roots_pem(), vec![old.pem(), new.pem()]);
}

#[test]
fn a_generated_bundle_is_a_year_long_root_and_a_terminal_issuer() {
    let c = generate("cp.example").expect("bundle");
    let root_der = certificates_der(&c.ca_crt);
    let issuer_der = certificates_der(&c.issuer_crt);
    let (_, root) = X509Certificate::from_der(&root_der[0]).expect("root");
    let (_, issuer) = X509Certificate::from_der(&issuer_der[0]).expect("issuer");
    assert!(root.is_ca() && issuer.is_ca());
    assert_eq!(root.subject(), root.issuer(), "self-signed");
    assert_eq!(issuer.issuer(), root.subject());
    assert!(root.subject().to_string().contains("CN=cp.example"));
    assert!(root.subject().to_string().contains("O=dapr.io"));
    let bc = issuer
        .basic_constraints()
        .expect("bc")
        .expect("present")
        .value;
    assert_eq!(
        bc.path_len_constraint,
        Some(0),
        "the issuer signs only leaves"
    );
    let life = issuer.validity().not_after.timestamp() - now();
    assert!((life - 365 * 24 * 3600).abs() < 60, "{life}");
    assert_eq!(root.raw_serial()[0] & 0x80, 0, "a positive serial");
    let again = generate("cp.example").expect("bundle");
    assert_ne!(again.ca_crt, c.ca_crt, "a new root each time");
}

#[test]
fn pem_blocks_round_trip() {
    let root = Root::new("r");
    let der = root.der().to_vec();
    let pem = pem_block(&der);
    assert!(pem.lines().all(|l| l.len() <= 64));
    assert_eq!(certificates_der(&pem), vec![der.clone()]);
    let two = format!("{pem}garbage between\n{pem}");
    assert_eq!(certificates_der(&two), vec![der.clone(), der]);
}

/// A refused CSR: its name, its bytes, and which refusal it must get.
type RefusalCase<'a> = (&'a str, &'a [u8], fn(&SignError) -> bool);
