//! Hop-by-hop headers: they describe one connection and stop at every proxy (RFC 9110
//! §7.6.1), both ways, for apps and HTTPEndpoints alike. Besides the fixed list, every
//! header the `Connection` header names is one.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// Go's reverse proxy list, plus `HTTP2-Settings` (RFC 7540 §3.2.1).
const FIXED: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

/// Whether `name` (lowercase, as `http` keeps names) is on the fixed list.
pub fn is_hop_by_hop(name: &str) -> bool {
    FIXED.iter().any(|h| h.as_str() == name)
}

/// The headers `Connection` names, which are hop-by-hop for this message only.
pub fn named_by_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// Removes every hop-by-hop header. A message without `Connection` (the common case)
/// costs no allocation.
pub fn strip(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        for name in named_by_connection(headers) {
            headers.remove(name);
        }
    }
    for h in &FIXED {
        headers.remove(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_list_and_what_connection_names_go() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("http2-settings", "AAA"),
            ("te", "trailers"),
            ("x-kept", "yes"),
        ] {
            h.append(k, v.parse().expect("value"));
        }
        strip(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
        assert!(is_hop_by_hop("upgrade") && !is_hop_by_hop("x-kept"));
    }
}
