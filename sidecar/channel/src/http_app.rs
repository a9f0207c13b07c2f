//! Calling an HTTP app (`--app-protocol http`, `h2c`).

use http::header;
use http::{HeaderMap, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{AppError, AppRequest, AppResponse};

/// Drops what must not cross this hop: the hop-by-hop headers, and `Host` and
/// `Content-Length`, which the next hop sets from its own target and the body it sends.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    crate::hop::strip(headers);
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
}

/// A method path made safe to append to a base URL, as Dapr normalizes methods: `.` and
/// `..` segments are resolved without ever climbing above the base, and `?`/`#` are
/// escaped so a method cannot smuggle in a query or fragment.
pub fn normalize_method(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = segments.join("/");
    if path.ends_with('/') && !out.is_empty() {
        out.push('/');
    }
    out.replace('?', "%3F").replace('#', "%23")
}

pub struct HttpChannel {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, crate::Body>,
    base: String,
    token: Option<HeaderValue>,
    max_body: usize,
}

impl HttpChannel {
    /// `h2c` speaks HTTP/2 without TLS to the app; `http` HTTP/1.1.
    /// `h2c` speaks HTTP/2 without TLS to the app, `tls` HTTPS (`--app-protocol https`).
    pub fn new(
        host: &str,
        port: u16,
        h2c: bool,
        tls: bool,
        token: Option<&str>,
        max_body: usize,
    ) -> Result<Self, AppError> {
        let connector = super::tls::app_connector(false)?;
        let mut builder = Client::builder(TokioExecutor::new());
        builder.http2_only(h2c);
        let scheme = if tls { "https" } else { "http" };
        Ok(Self {
            client: builder.build(connector),
            base: format!("{scheme}://{host}:{port}"),
            token: token.and_then(|t| HeaderValue::from_str(t).ok()),
            max_body,
        })
    }

    /// A channel to a non-Dapr HTTP endpoint at `base_url` (`http(s)://host:port[/prefix]`).
    pub fn external(
        base_url: &str,
        tls: &super::EndpointTls,
        max_body: usize,
    ) -> Result<Self, AppError> {
        let connector = super::tls::endpoint_connector(tls)?;
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: base_url.trim_end_matches('/').to_string(),
            token: None,
            max_body,
        })
    }

    pub async fn invoke(&self, req: AppRequest) -> Result<AppResponse, AppError> {
        let uri = self.uri(&req.path, &req.query)?;
        let mut headers = req.headers;
        strip_hop_by_hop(&mut headers);
        crate::trace_context::to_http_app(&mut headers);
        if let Some(token) = &self.token {
            headers.insert("dapr-api-token", token.clone());
        }
        let mut request = Request::builder()
            .method(req.method)
            .uri(uri)
            .body(crate::Body::from(req.body))
            .map_err(|e| AppError::Call(e.into()))?;
        *request.headers_mut() = headers;
        let resp = self
            .client
            .request(request)
            .await
            .map_err(|e| AppError::Call(e.into()))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, self.max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    AppError::TooLarge(self.max_body)
                } else {
                    AppError::Call(e)
                }
            })?
            .to_bytes();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        Ok(AppResponse {
            status: parts.status,
            headers,
            body,
            data_type: String::new(),
        })
    }

    /// Calls the app with a streamed body and hands back its response unread, so neither
    /// body is ever held whole in the sidecar.
    pub async fn invoke_streaming(
        &self,
        head: super::AppRequestHead,
        body: crate::Body,
    ) -> Result<http::Response<hyper::body::Incoming>, AppError> {
        let uri = self.uri(&head.path, &head.query)?;
        let mut headers = head.headers;
        // The caller's Content-Length survives the chunked hop between sidecars, so the
        // app gets a sized body, as from Dapr, rather than a chunked one it may not read.
        let length = headers.get(header::CONTENT_LENGTH).cloned();
        strip_hop_by_hop(&mut headers);
        if let Some(length) = length {
            headers.insert(header::CONTENT_LENGTH, length);
        }
        crate::trace_context::to_http_app(&mut headers);
        if let Some(token) = &self.token {
            headers.insert("dapr-api-token", token.clone());
        }
        let mut request = Request::builder()
            .method(head.method)
            .uri(uri)
            .body(body)
            .map_err(|e| AppError::Call(e.into()))?;
        *request.headers_mut() = headers;
        let mut resp = self
            .client
            .request(request)
            .await
            .map_err(|e| AppError::Call(e.into()))?;
        strip_hop_by_hop(resp.headers_mut());
        Ok(resp)
    }

    fn uri(&self, path: &str, query: &str) -> Result<Uri, AppError> {
        let path = normalize_method(path);
        let mut uri = String::with_capacity(self.base.len() + path.len() + query.len() + 2);
        uri.push_str(&self.base);
        uri.push('/');
        uri.push_str(&path);
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        uri.parse().map_err(AppError::MethodPath)
    }

    /// `GET <path>` answers 2xx.
    pub async fn healthy(&self, path: &str) -> bool {
        let uri: Result<Uri, _> = format!("{}/{}", self.base, path.trim_start_matches('/')).parse();
        let Ok(uri) = uri else { return false };
        let Ok(req) = Request::get(uri).body(crate::Body::empty()) else {
            return false;
        };
        match self.client.request(req).await {
            Ok(resp) => resp.status().is_success(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_method;

    #[test]
    fn methods_cannot_escape_their_base() {
        assert_eq!(normalize_method("orders/42"), "orders/42");
        assert_eq!(normalize_method("a/./b//c/"), "a/b/c/");
        assert_eq!(normalize_method("../../admin"), "admin");
        assert_eq!(normalize_method("a/../../b"), "b");
        assert_eq!(normalize_method("x?evil=1#f"), "x%3Fevil=1%23f");
        assert_eq!(normalize_method(""), "");
    }
}
