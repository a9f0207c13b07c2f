//! SPIFFE IDs as Dapr uses them: `spiffe://<trust domain>/ns/<namespace>/<app id>`.

use std::fmt;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub app_id: String,
}

impl SpiffeId {
    pub fn new(trust_domain: &str, namespace: &str, app_id: &str) -> Self {
        Self {
            trust_domain: trust_domain.into(),
            namespace: namespace.into(),
            app_id: app_id.into(),
        }
    }

    /// Parses Dapr's form; anything else (other paths, empty parts) is not an identity.
    pub fn parse(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix("spiffe://")?;
        let (trust_domain, path) = rest.split_once('/')?;
        let mut parts = path.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("ns"), Some(ns), Some(id), None)
                if !trust_domain.is_empty() && !ns.is_empty() && !id.is_empty() =>
            {
                Some(Self::new(trust_domain, ns, id))
            }
            _ => None,
        }
    }

    /// The identity in a certificate's URI SAN, if it has exactly one Dapr SPIFFE ID.
    pub fn from_cert_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut found = None;
        for ext in cert.extensions() {
            if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
                for name in &san.general_names {
                    if let GeneralName::URI(uri) = name
                        && let Some(id) = Self::parse(uri)
                    {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(id);
                    }
                }
            }
        }
        found
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/{}",
            self.trust_domain, self.namespace, self.app_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_daprs_shape_is_an_identity() {
        let id = SpiffeId::parse("spiffe://public/ns/shop/orders").expect("id");
        assert_eq!(id, SpiffeId::new("public", "shop", "orders"));
        assert_eq!(id.to_string(), "spiffe://public/ns/shop/orders");
        for bad in [
            "https://public/ns/shop/orders",
            "spiffe://public/shop/orders",
            "spiffe://public/ns/shop/orders/extra",
            "spiffe:///ns/shop/orders",
            "spiffe://public/ns//orders",
        ] {
            assert!(SpiffeId::parse(bad).is_none(), "{bad}");
        }
    }
}

#[cfg(test)]
#[path = "spiffe_tests.rs"]
mod cert_tests;
