//! The SPIFFE verifiers with real certificates: the server verifier called directly for
//! each refusal it owns, and real rustls handshakes over an in-memory pipe for what both
//! ends decide together (client certificates, rotation).

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, Error};
use test_support::certs::{Issuer, Leaf, LeafSpec, Root};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const TD: &str = "public";

fn provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A root and an issuer under it: one trust domain's PKI.
fn pki(name: &str) -> (Root, Issuer) {
    let root = Root::new(&format!("{name}-root"));
    let issuer = root.issuer(&format!("{name}-issuer"));
    (root, issuer)
}

fn verifier(root: &Root, expected: SpiffeId) -> SpiffeServerVerifier {
    SpiffeServerVerifier {
        roots: root.root_store(),
        accept: Arc::new(move |id| *id == expected),
        algorithms: algorithms(),
    }
}

fn verify(v: &SpiffeServerVerifier, leaf: &Leaf) -> Result<(), Error> {
    let chain = leaf.chain_der();
    let name = ServerName::try_from("dapr.local").expect("name");
    v.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
        .map(|_| ())
}

fn cell(leaf: &Leaf) -> Arc<IdentityCell> {
    let id = SpiffeId::from_cert_der(&leaf.chain_der()[0]).unwrap_or_else(|| {
        // Certificates without an identity still need a cell to be presented.
        SpiffeId::new("none", "none", "none")
    });
    IdentityCell::new(leaf.certified_key(), id)
}

#[test]
fn the_server_verifier_accepts_the_expected_id_on_a_chain_to_the_root() {
    provider();
    let (root, issuer) = pki("a");
    let leaf = issuer.workload(TD, "shop", "orders");
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    verify(&v, &leaf).expect("trusted");
}

#[test]
fn the_server_verifier_refuses_a_chain_to_another_root() {
    provider();
    let (root, _) = pki("a");
    let (_, stranger) = pki("b");
    let leaf = stranger.workload(TD, "shop", "orders");
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    let err = verify(&v, &leaf).expect_err("foreign root");
    assert!(
        matches!(
            err,
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
}

#[test]
fn the_server_verifier_refuses_a_leaf_without_its_issuer() {
    provider();
    let (root, issuer) = pki("a");
    let leaf = issuer.workload(TD, "shop", "orders");
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    let chain = leaf.chain_der();
    let name = ServerName::try_from("dapr.local").expect("name");
    let err = v
        .verify_server_cert(&chain[0], &[], &name, &[], UnixTime::now())
        .expect_err("no intermediate");
    assert!(
        matches!(
            err,
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
}

#[test]
fn the_server_verifier_refuses_an_unexpected_spiffe_id() {
    provider();
    let (root, issuer) = pki("a");
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    for (what, leaf) in [
        ("another app", issuer.workload(TD, "shop", "payments")),
        ("another namespace", issuer.workload(TD, "other", "orders")),
        (
            "another trust domain",
            issuer.workload("acme", "shop", "orders"),
        ),
    ] {
        let err = verify(&v, &leaf).expect_err(what);
        assert!(
            matches!(&err, Error::General(m) if m.starts_with("unexpected peer identity spiffe://")),
            "{what}: {err:?}"
        );
    }
}

#[test]
fn the_server_verifier_refuses_a_certificate_without_a_spiffe_id() {
    provider();
    let (root, issuer) = pki("a");
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    for (what, spec) in [
        ("DNS only", LeafSpec::default().dns("orders.shop.svc")),
        ("no names", LeafSpec::default()),
        (
            "two SPIFFE IDs",
            LeafSpec::spiffe(TD, "shop", "orders").uri("spiffe://public/ns/shop/admin"),
        ),
    ] {
        let err = verify(&v, &issuer.leaf(&spec)).expect_err(what);
        assert!(
            matches!(&err, Error::General(m) if m.contains("no SPIFFE ID")),
            "{what}: {err:?}"
        );
    }
}

#[test]
fn the_server_verifier_refuses_an_expired_leaf() {
    provider();
    let (root, issuer) = pki("a");
    let leaf = issuer.leaf(&LeafSpec::spiffe(TD, "shop", "orders").expired());
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    let err = verify(&v, &leaf).expect_err("expired");
    assert!(
        matches!(
            err,
            Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{err:?}"
    );
}

#[test]
fn the_server_verifier_refuses_a_leaf_signed_by_a_non_ca() {
    provider();
    let (root, issuer) = pki("a");
    let signer = issuer.workload(TD, "shop", "signer");
    let leaf = signer.leaf(&LeafSpec::spiffe(TD, "shop", "orders"));
    assert_eq!(leaf.chain_der().len(), 3, "leaf, non-CA signer, issuer");
    let v = verifier(&root, SpiffeId::new(TD, "shop", "orders"));
    let err = verify(&v, &leaf).expect_err("signed by a leaf");
    assert!(matches!(err, Error::InvalidCertificate(_)), "{err:?}");
}

#[test]
fn the_predicate_sees_the_parsed_identity() {
    provider();
    let (root, issuer) = pki("a");
    let leaf = issuer.workload("cp.example", "dapr-system", "dapr-sentry");
    let v = SpiffeServerVerifier {
        roots: root.root_store(),
        accept: Arc::new(|id| id.namespace == "dapr-system" && id.app_id.starts_with("dapr-")),
        algorithms: algorithms(),
    };
    verify(&v, &leaf).expect("a control-plane service");
    verify(&v, &issuer.workload(TD, "default", "dapr-sentry")).expect_err("wrong namespace");
}

#[test]
fn peer_id_reads_the_leaf_only() {
    let (_, issuer) = pki("a");
    let leaf = issuer.workload(TD, "shop", "orders");
    assert_eq!(
        peer_id(&leaf.chain_der()),
        Some(SpiffeId::new(TD, "shop", "orders"))
    );
    assert_eq!(peer_id(&[]), None);
    let reversed: Vec<CertificateDer<'static>> = leaf.chain_der().into_iter().rev().collect();
    assert_eq!(peer_id(&reversed), None, "the issuer is not the peer");
}

/// The outcome of one handshake: what each side saw of the other, or why it stopped.
struct Outcome {
    server: Result<Option<SpiffeId>, std::io::Error>,
    client: Result<Option<SpiffeId>, std::io::Error>,
}

/// Runs a TLS handshake over an in-memory pipe, then one byte each way so that a refusal
/// by either side (in TLS 1.3 the server judges the client after the client finishes)
/// shows on both.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Outcome {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let server_side = async move {
        let mut tls = tokio_rustls::TlsAcceptor::from(server).accept(s).await?;
        tls.write_all(b"s").await?;
        tls.flush().await?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await?;
        Ok(tls.get_ref().1.peer_certificates().and_then(peer_id))
    };
    let client_side = async move {
        let name = ServerName::try_from("dapr.local").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, c)
            .await?;
        tls.write_all(b"c").await?;
        tls.flush().await?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await?;
        Ok(tls.get_ref().1.peer_certificates().and_then(peer_id))
    };
    let (server, client) = tokio::join!(server_side, client_side);
    Outcome { server, client }
}

fn tls_error(e: &std::io::Error) -> Option<&Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<Error>())
}

#[tokio::test]
async fn mutual_tls_between_two_workloads_of_one_root() {
    provider();
    let (root, issuer) = pki("a");
    let server = server_config(
        cell(&issuer.workload(TD, "shop", "orders")),
        root.root_store(),
    )
    .expect("server config");
    let expected = SpiffeId::new(TD, "shop", "orders");
    let client = client_config(
        Some(cell(&issuer.workload(TD, "shop", "cart"))),
        root.root_store(),
        move |id| *id == expected,
    );
    let out = handshake(server, client).await;
    assert_eq!(
        out.server.expect("server side"),
        Some(SpiffeId::new(TD, "shop", "cart")),
        "the server reads the caller's identity"
    );
    assert_eq!(
        out.client.expect("client side"),
        Some(SpiffeId::new(TD, "shop", "orders"))
    );
}

#[tokio::test]
async fn the_client_refuses_a_server_with_another_identity() {
    provider();
    let (root, issuer) = pki("a");
    let server = server_config(
        cell(&issuer.workload(TD, "shop", "impostor")),
        root.root_store(),
    )
    .expect("server config");
    let expected = SpiffeId::new(TD, "shop", "orders");
    let client = client_config(
        Some(cell(&issuer.workload(TD, "shop", "cart"))),
        root.root_store(),
        move |id| *id == expected,
    );
    let out = handshake(server, client).await;
    let err = out.client.expect_err("impostor");
    assert!(
        matches!(tls_error(&err), Some(Error::General(m)) if m.contains("unexpected peer identity")),
        "{err:?}"
    );
    assert!(out.server.is_err());
}

#[tokio::test]
async fn the_server_refuses_clients_it_cannot_verify() {
    provider();
    let (root, issuer) = pki("a");
    let (_, stranger) = pki("b");
    let server = server_config(
        cell(&issuer.workload(TD, "shop", "orders")),
        root.root_store(),
    )
    .expect("server config");
    let anyone = |_: &SpiffeId| true;

    let out = handshake(
        server.clone(),
        client_config(None, root.root_store(), anyone),
    )
    .await;
    let err = out.server.expect_err("no client certificate");
    assert!(
        matches!(tls_error(&err), Some(Error::NoCertificatesPresented)),
        "{err:?}"
    );
    assert!(out.client.is_err(), "the client hears of it");

    let cases = [
        ("another root", stranger.workload(TD, "shop", "cart")),
        (
            "expired",
            issuer.leaf(&LeafSpec::spiffe(TD, "shop", "cart").expired()),
        ),
        (
            "signed by a non-CA",
            issuer
                .workload(TD, "shop", "signer")
                .leaf(&LeafSpec::spiffe(TD, "shop", "cart")),
        ),
    ];
    for (what, leaf) in cases {
        let client = client_config(Some(cell(&leaf)), root.root_store(), anyone);
        let out = handshake(server.clone(), client).await;
        let err = out.server.expect_err(what);
        assert!(
            matches!(tls_error(&err), Some(Error::InvalidCertificate(_))),
            "{what}: {err:?}"
        );
        assert!(out.client.is_err(), "{what}: the client hears of it");
    }
}

#[tokio::test]
async fn the_server_accepts_a_client_certificate_without_a_spiffe_id_and_reports_none() {
    // The server only checks the chain; who the caller is, is the caller's ID to read, and
    // a missing one is for the caller of `peer_id` to refuse.
    provider();
    let (root, issuer) = pki("a");
    let server = server_config(
        cell(&issuer.workload(TD, "shop", "orders")),
        root.root_store(),
    )
    .expect("server config");
    let client = client_config(
        Some(cell(
            &issuer.leaf(&LeafSpec::default().dns("cart.shop.svc")),
        )),
        root.root_store(),
        |_| true,
    );
    let out = handshake(server, client).await;
    assert_eq!(out.server.expect("chain is fine"), None);
}

#[tokio::test]
async fn a_replaced_certificate_is_used_by_the_next_handshake() {
    provider();
    let (root, issuer) = pki("a");
    let served = cell(&issuer.workload(TD, "shop", "orders"));
    let server = server_config(served.clone(), root.root_store()).expect("server config");
    let first_issuer = issuer.der();
    let client = || {
        client_config(
            Some(cell(&issuer.workload(TD, "shop", "cart"))),
            root.root_store(),
            |_| true,
        )
    };
    handshake(server.clone(), client())
        .await
        .client
        .expect("before rotation");

    // A new issuer under the same root: the server's new chain differs, the client's
    // trust does not.
    let rotated = root.issuer("a-issuer-2");
    served.replace(rotated.workload(TD, "shop", "orders").certified_key());
    assert_ne!(rotated.der(), first_issuer);
    let (c, s) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move {
        let _ = tokio_rustls::TlsAcceptor::from(server).accept(s).await;
    });
    let tls = tokio_rustls::TlsConnector::from(client())
        .connect(ServerName::try_from("dapr.local").expect("name"), c)
        .await
        .expect("after rotation");
    let chain = tls.get_ref().1.peer_certificates().expect("certs").to_vec();
    assert_eq!(chain[1], rotated.der(), "served by the new issuer");
    drop(tls);
    let _ = accept.await;
}
