//! The one HTTP client the HTTP exporters (OTLP over HTTP, Zipkin) post with: HTTP/1.1,
//! TLS against the system's roots for `https` endpoints.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::ExportError;

/// Posts bodies to one collector URL.
pub struct Poster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
    exporter: &'static str,
}

impl Poster {
    /// A client for `url` sending `headers` with every post. Header names or values that
    /// HTTP cannot carry are skipped with a warning.
    pub fn new(
        exporter: &'static str,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Self, crate::TraceError> {
        let uri: Uri = url.parse().map_err(|e| crate::TraceError::Endpoint {
            exporter,
            endpoint: url.to_string(),
            reason: format!("{e}"),
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(crate::TraceError::Endpoint {
                exporter,
                endpoint: url.to_string(),
                reason: "want an http or https URL".into(),
            });
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                (Ok(n), Ok(v)) => {
                    map.append(n, v);
                }
                _ => tracing::warn!("{exporter} exporter: header {name:?} cannot be sent; skipped"),
            }
        }
        let roots = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| crate::TraceError::Tls(e.to_string()))?;
        let connector = roots.https_or_http().enable_http1().build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            uri,
            headers: map,
            exporter,
        })
    }

    /// Posts one body; any status but 2xx is a failure.
    pub async fn post(&self, content_type: &'static str, body: Vec<u8>) -> Result<(), ExportError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.failed(e.to_string()))?;
        *req.headers_mut() = self.headers.clone();
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        let status = resp.status();
        // Read the answer to the end so the connection can be reused.
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err(self.failed(format!("{} answered {status}: {text}", self.uri)))
    }

    fn failed(&self, reason: String) -> ExportError {
        ExportError::Http {
            exporter: self.exporter,
            reason,
        }
    }
}
