//! Reading the identity out of real certificates: exactly one Dapr SPIFFE ID in the URI
//! SANs is an identity; none, two, or another shape is not.

use test_support::certs::{LeafSpec, Root};

use super::SpiffeId;

fn id_of(spec: LeafSpec) -> Option<SpiffeId> {
    let root = Root::new("spiffe-test-root");
    let leaf = root.issuer("spiffe-test-issuer").leaf(&spec);
    SpiffeId::from_cert_der(&leaf.chain_der()[0])
}

#[test]
fn a_workload_certificate_carries_its_spiffe_id() {
    let id = id_of(LeafSpec::spiffe("acme", "shop", "orders"));
    assert_eq!(id, Some(SpiffeId::new("acme", "shop", "orders")));
}

#[test]
fn other_names_beside_the_spiffe_id_do_not_hide_it() {
    let spec = LeafSpec::spiffe("public", "default", "cart")
        .uri("https://example.com/not-an-identity")
        .dns("cart.default.svc");
    assert_eq!(
        id_of(spec),
        Some(SpiffeId::new("public", "default", "cart"))
    );
}

#[test]
fn a_certificate_without_a_dapr_spiffe_id_has_no_identity() {
    let cases = [
        ("no names", LeafSpec::default()),
        ("DNS only", LeafSpec::default().dns("orders.shop.svc")),
        (
            "a URI that is not SPIFFE",
            LeafSpec::default().uri("https://public/ns/shop/orders"),
        ),
        (
            "SPIFFE without Dapr's path",
            LeafSpec::default().uri("spiffe://public/workload/orders"),
        ),
        (
            "an empty app id",
            LeafSpec::default().uri("spiffe://public/ns/shop/"),
        ),
    ];
    for (what, spec) in cases {
        assert_eq!(id_of(spec), None, "{what}");
    }
}

#[test]
fn two_spiffe_ids_are_ambiguous_and_refused() {
    let spec = LeafSpec::spiffe("public", "shop", "orders").uri("spiffe://public/ns/shop/admin");
    assert_eq!(id_of(spec), None);
}

#[test]
fn bytes_that_are_no_certificate_have_no_identity() {
    assert_eq!(SpiffeId::from_cert_der(b""), None);
    assert_eq!(SpiffeId::from_cert_der(b"\x30\x03\x02\x01\x00"), None);
    let root = Root::new("spiffe-test-root");
    let pem = root.pem();
    assert_eq!(
        SpiffeId::from_cert_der(pem.as_bytes()),
        None,
        "PEM is not DER"
    );
}

#[test]
fn a_root_certificate_is_nobodys_identity() {
    let root = Root::new("spiffe-test-root");
    assert_eq!(SpiffeId::from_cert_der(&root.der()), None);
}

#[test]
fn parsing_needs_every_part_and_nothing_more() {
    for bad in [
        "",
        "spiffe://",
        "spiffe://public",
        "spiffe://public/",
        "spiffe://public/ns/shop",
        "spiffe://public/ns/shop/orders/",
        "spiffe://public/NS/shop/orders",
        "SPIFFE://public/ns/shop/orders",
    ] {
        assert_eq!(SpiffeId::parse(bad), None, "{bad:?}");
    }
    let id = SpiffeId::parse("spiffe://cp.example/ns/dapr-system/dapr-sentry").expect("id");
    assert_eq!(
        id,
        SpiffeId::new("cp.example", "dapr-system", "dapr-sentry")
    );
    assert_eq!(SpiffeId::parse(&id.to_string()), Some(id));
}
