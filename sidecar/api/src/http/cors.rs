//! CORS for browser callers of the HTTP API, as `--allowed-origins` asks (default `*`):
//! a preflight `OPTIONS` is answered here, before the API token is checked (browsers send
//! no credentials with it), and every answer to an allowed origin names it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Api;

/// The origins `--allowed-origins` lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`, Dapr's default.
    Any,
    /// A comma-separated list; `*` inside an entry matches any run of characters
    /// (`https://*.example.com`).
    Only(Vec<String>),
}

impl AllowedOrigins {
    /// Parses the flag; empty is the default, `*`.
    pub fn parse(flag: &str) -> Self {
        let list: Vec<String> = flag
            .split(',')
            .map(|o| o.trim().to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        if list.is_empty() || list.iter().any(|o| o == "*") {
            Self::Any
        } else {
            Self::Only(list)
        }
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(list) => {
                let origin = origin.to_ascii_lowercase();
                list.iter().any(|pattern| wildcard_match(pattern, &origin))
            }
        }
    }

    /// What `Access-Control-Allow-Origin` says for an allowed origin.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        match self {
            Self::Any => HeaderValue::from_static("*"),
            Self::Only(_) => origin.clone(),
        }
    }
}

/// `pattern` with at most one `*`, matched against `text`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, suffix)) => {
            text.len() >= prefix.len() + suffix.len()
                && text.starts_with(prefix)
                && text.ends_with(suffix)
        }
    }
}

const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// Answers preflights and marks allowed cross-origin answers; other requests pass as they
/// came, at the cost of one header lookup.
pub async fn cors(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| api.allowed_origins.allows(o));
    let requested_method = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .cloned();
    if req.method() == Method::OPTIONS
        && let Some(method) = requested_method
    {
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        if allowed {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                api.allowed_origins.allow_origin(&origin),
            );
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method);
            if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            }
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            api.allowed_origins.allow_origin(&origin),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_as_the_flag_lists_them() {
        assert_eq!(AllowedOrigins::parse(""), AllowedOrigins::Any);
        assert_eq!(AllowedOrigins::parse("*"), AllowedOrigins::Any);
        let only = AllowedOrigins::parse("https://app.example.com, https://*.test.io");
        assert!(only.allows("https://app.example.com"));
        assert!(only.allows("HTTPS://App.Example.com"));
        assert!(only.allows("https://a.test.io"));
        assert!(!only.allows("https://evil.example.org"));
        assert!(!only.allows("https://test.io"));
    }
}
