//! The channels out of the sidecar: to its own app (invocations of the app's methods over
//! HTTP or gRPC, the app-port wait at startup, `--app-max-concurrency`, `APP_API_TOKEN`,
//! health probes), to other sidecars ([`Peers`]), and the workload identity used towards
//! them ([`mtls`]).
//!
//! Nothing here knows the sidecar's servers: requests arrive as neutral values
//! ([`AppRequest`]) whichever front door built them.

mod body;
mod grpc_app;
mod health;
pub mod hop;
mod http_app;
pub mod mtls;
mod peers;
mod tls;
mod trace_context;
mod verbs;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::Semaphore;

pub use body::{Body, BodyError, DataStream};
pub use grpc_app::{GrpcChannel, GrpcStatus, http_status_of_code};
pub use health::{AppHealth, HealthProbe};
pub use http_app::HttpChannel;
pub use peers::{CallError, Peer, PeerError, Peers, ProxyClient, ResponseStream};
pub use tls::{EndpointTls, TlsError};

/// The reason of a failed call, whatever the library that failed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub use verbs::{method_of, verb_of};

/// A method call on the app, as neutral values (built from an HTTP request, a gRPC
/// `InvokeRequest`, or another sidecar's `CallLocal`).
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub method: http::Method,
    /// The app's method path, without the leading `/`.
    pub path: String,
    /// Raw query string, without `?`.
    pub query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The payload's protobuf type (`Any.type_url`) when a gRPC caller gave one; a gRPC
    /// app receives it as sent. Empty for HTTP.
    pub data_type: String,
}

/// The request's or response's content type, empty when it has none.
pub fn content_type(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Sets the content type a protobuf message carries beside its data; empty means none.
pub fn set_content_type(headers: &mut http::HeaderMap, value: &str) {
    if !value.is_empty()
        && let Ok(v) = http::HeaderValue::from_str(value)
    {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
}

/// A method call without its body, for calls whose body is streamed.
#[derive(Debug, Clone)]
pub struct AppRequestHead {
    pub method: http::Method,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    /// As [`AppRequest::data_type`].
    pub data_type: String,
}

/// The app's answer, relayed to the caller as it is.
#[derive(Debug, Clone)]
pub struct AppResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The protobuf type (`Any.type_url`) a gRPC app gave its answer; empty for HTTP.
    pub data_type: String,
}

/// Why a call to the app (or to a non-Dapr endpoint) failed.
#[derive(Debug, Error)]
pub enum AppError {
    #[error("app channel not initialized: the sidecar was started without --app-port")]
    NoChannel,
    /// The call could not be made or was not answered; the message ends with the reason,
    /// which is therefore not also the `source`.
    #[error("error invoking app: {0}")]
    Call(BoxError),
    /// The method and query do not make a URI.
    #[error("error invoking app: invalid method path: {0}")]
    MethodPath(http::uri::InvalidUri),
    /// The channel's TLS configuration could not be built.
    #[error("error invoking app: {0}")]
    Tls(TlsError),
    #[error("the app's response is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("app is not in a healthy state")]
    Unhealthy,
}

impl From<TlsError> for AppError {
    fn from(e: TlsError) -> Self {
        AppError::Tls(e)
    }
}

/// How the app is reached. One value per sidecar, so the size difference between the
/// variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Protocol {
    Http(HttpChannel),
    Grpc(GrpcChannel),
}

/// The app, reached over its protocol, with a concurrency limit shared by every caller and
/// the health the probes last saw.
pub struct AppChannel {
    protocol: Protocol,
    limit: Option<Arc<Semaphore>>,
    health: Arc<AppHealth>,
}

impl AppChannel {
    pub fn new(protocol: Protocol, max_concurrency: Option<usize>, health: Arc<AppHealth>) -> Self {
        Self {
            protocol,
            limit: max_concurrency
                .filter(|n| *n > 0)
                .map(|n| Arc::new(Semaphore::new(n))),
            health,
        }
    }

    /// Calls the app with a streamed body; the response body streams back. gRPC apps take
    /// whole messages, so for them the body is collected (within the size limit) first.
    pub async fn invoke_streaming(
        &self,
        head: AppRequestHead,
        body: Body,
        max_body: usize,
    ) -> Result<http::Response<Body>, AppError> {
        let permit = self.admit().await?;
        match &self.protocol {
            // The slot stays taken until the app's response body has been read to the end.
            Protocol::Http(h) => Ok(h.invoke_streaming(head, body).await?.map(|b| {
                Body::new(Permitted {
                    inner: b,
                    _permit: permit,
                })
            })),
            Protocol::Grpc(g) => {
                use http_body_util::BodyExt;
                let body = http_body_util::Limited::new(body, max_body)
                    .collect()
                    .await
                    .map_err(|_| AppError::TooLarge(max_body))?
                    .to_bytes();
                let req = AppRequest {
                    method: head.method,
                    path: head.path,
                    query: head.query,
                    headers: head.headers,
                    body,
                    data_type: head.data_type,
                };
                let resp = g.invoke(req).await?;
                let mut out = http::Response::new(Body::from(resp.body));
                *out.status_mut() = resp.status;
                *out.headers_mut() = resp.headers;
                Ok(out)
            }
        }
    }

    /// The gRPC app, for the callbacks only a gRPC app has (pub/sub, bindings); `None`
    /// for an HTTP app. Calls made through it wait for a slot like every other call.
    pub async fn grpc(&self) -> Result<Option<Admitted<'_, GrpcChannel>>, AppError> {
        match &self.protocol {
            Protocol::Grpc(g) => Ok(Some(Admitted {
                inner: g,
                _permit: self.admit().await?,
            })),
            Protocol::Http(_) => Ok(None),
        }
    }

    /// `host:port` of a gRPC app, which proxied gRPC calls are sent to.
    pub fn grpc_address(&self) -> Option<String> {
        match &self.protocol {
            Protocol::Grpc(g) => Some(g.address().to_string()),
            Protocol::Http(_) => None,
        }
    }

    pub fn health(&self) -> &Arc<AppHealth> {
        &self.health
    }

    /// Runs one health probe: `path` on an HTTP app, `HealthCheck` on a gRPC app.
    pub async fn probe(&self, path: &str, timeout: Duration) -> bool {
        let check = async {
            match &self.protocol {
                Protocol::Http(h) => h.healthy(path).await,
                Protocol::Grpc(g) => g.healthy().await,
            }
        };
        tokio::time::timeout(timeout, check).await.unwrap_or(false)
    }

    /// Waits for a free slot under `--app-max-concurrency` and refuses an unhealthy app;
    /// the slot is held until the returned permit drops.
    async fn admit(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, AppError> {
        let permit = match &self.limit {
            Some(sem) => Some(
                sem.clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| AppError::Call(e.into()))?,
            ),
            None => None,
        };
        if !self.health.is_healthy() {
            return Err(AppError::Unhealthy);
        }
        Ok(permit)
    }

    /// Calls the app with a whole body.
    pub async fn invoke(&self, req: AppRequest) -> Result<AppResponse, AppError> {
        let _permit = self.admit().await?;
        match &self.protocol {
            Protocol::Http(h) => h.invoke(req).await,
            Protocol::Grpc(g) => g.invoke(req).await,
        }
    }
}

/// A channel holding one of the app's concurrency slots until it drops.
pub struct Admitted<'a, T> {
    inner: &'a T,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<T> std::ops::Deref for Admitted<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner
    }
}

/// Waits until something listens on the app port, logging while it waits, as Dapr does
/// before it reports ready.
pub async fn wait_for_port(host: &str, port: u16) {
    let addr = format!("{host}:{port}");
    let mut waited = Duration::ZERO;
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return;
        }
        if waited.as_secs() > 0 && waited.as_millis() % 5000 < 50 {
            tracing::info!("application discovered on port {port}? not yet, still waiting");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
}

/// A response body that holds an `--app-max-concurrency` slot until it ends or is dropped.
struct Permitted<B> {
    inner: B,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Permitted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
