//! What state routes read from the URL: path parameters decoded as Dapr's router decodes
//! them, and the `metadata.*`, `consistency` and `concurrency` query parameters.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use blocks::errors::DaprError;

use super::errors::HttpError;

/// What the state routes read from the query string: `metadata.<k>=<v>` pairs (first
/// value wins, as in Dapr), `consistency` and `concurrency`.
#[derive(Debug, Default)]
pub struct Params {
    pub metadata: HashMap<String, String>,
    pub consistency: String,
    pub concurrency: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| DaprError::malformed(format!("invalid query string: {e}")))?;
        let mut out = Params::default();
        for (k, v) in pairs {
            if let Some(name) = k.strip_prefix("metadata.") {
                out.metadata.entry(name.to_string()).or_insert(v);
            } else if k == "consistency" {
                out.consistency = v;
            } else if k == "concurrency" {
                out.concurrency = v;
            }
        }
        Ok(out)
    }
}

/// A path parameter with a broken `%` escape. Dapr's router answers it before any
/// building block sees the request: a plain-text 400 with Go's words.
#[derive(Debug, thiserror::Error)]
#[error("failed to unescape request parameter \"{name}\". Error: invalid URL escape \"{escape}\"")]
pub struct BadEscape {
    name: &'static str,
    /// The escape as Go quotes it: `%` and up to two characters after it.
    escape: String,
}

impl axum::response::IntoResponse for BadEscape {
    fn into_response(self) -> axum::response::Response {
        let mut resp = (axum::http::StatusCode::BAD_REQUEST, format!("{self}\n")).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

/// Decodes a path parameter the way Go's `url.QueryUnescape` does in Dapr's router: `%XX`
/// escapes and `+` as a space. Keys must name the same stored entry whichever runtime
/// serves the request. Go's strings need not be UTF-8 (`%ff` is a key there); here such
/// bytes become U+FFFD.
pub fn query_unescape(name: &'static str, raw: &str) -> Result<String, BadEscape> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| {
                        u8::from_str_radix(h, 16)
                            .ok()
                            .filter(|_| !h.starts_with('+'))
                    });
                let Some(byte) = hex else {
                    let end = raw.len().min(i + 3);
                    let escape = String::from_utf8_lossy(&bytes[i..end]).into_owned();
                    return Err(BadEscape { name, escape });
                };
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// `{store}` and `{key}` of a state route. On `/v1.0/state/{store}/bulk` and
/// `/transaction`, which have their own POST routes, a GET or DELETE names a key that
/// happens to be called `bulk` or `transaction`.
pub struct StoreKey {
    pub store: String,
    pub key: String,
}

impl<S: Send + Sync> FromRequestParts<S> for StoreKey {
    type Rejection = axum::response::Response;

    /// Reads the raw (still escaped) segments of `/v1.0/state/{store}/{key}` and decodes
    /// each once. The router's own path parameters are already percent-decoded, and
    /// decoding those again would turn a key `p+q` (sent as `p%2Bq`) into `p q`.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (store, key) = store_and_key(parts.uri.path()).ok_or_else(|| {
            HttpError::from(DaprError::malformed(
                "invalid path: expected /v1.0/state/{storeName}/{key}",
            ))
            .into_response()
        })?;
        Ok(StoreKey {
            store: query_unescape("storeName", store).map_err(IntoResponse::into_response)?,
            key: query_unescape("key", key).map_err(IntoResponse::into_response)?,
        })
    }
}

/// The raw `{store}` and `{key}` segments of a state key route.
fn store_and_key(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let mut segments = rest.splitn(4, '/');
    let (_version, _state) = (segments.next()?, segments.next()?);
    let store = segments.next()?;
    let key = segments.next()?;
    (!key.contains('/')).then_some((store, key))
}

#[cfg(test)]
mod tests {
    use super::{query_unescape, store_and_key};

    #[test]
    fn state_routes_give_their_raw_segments() {
        assert_eq!(
            store_and_key("/v1.0/state/store/p%2Bq"),
            Some(("store", "p%2Bq"))
        );
        assert_eq!(
            store_and_key("/v1.0/state/my%20store/bulk"),
            Some(("my%20store", "bulk"))
        );
        assert_eq!(store_and_key("/v1.0/state/store"), None);
        assert_eq!(store_and_key("/v1.0/state/store/a/b"), None);
    }

    #[test]
    fn unescapes_like_go() {
        assert_eq!(
            query_unescape("key", "a+b%20c%2Fd").ok().as_deref(),
            Some("a b c/d")
        );
        assert_eq!(query_unescape("key", "%7C%7C").ok().as_deref(), Some("||"));
        assert_eq!(
            query_unescape("key", "caf%C3%A9").ok().as_deref(),
            Some("café")
        );
        let err = |raw| query_unescape("key", raw).err().map(|e| e.to_string());
        assert_eq!(
            err("bad%zz").as_deref(),
            Some("failed to unescape request parameter \"key\". Error: invalid URL escape \"%zz\"")
        );
        assert!(err("bad%2").is_some_and(|e| e.ends_with("\"%2\"")));
        assert_eq!(
            query_unescape("key", "%ff").ok().as_deref(),
            Some("\u{fffd}")
        );
    }
}
