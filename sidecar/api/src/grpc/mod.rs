//! Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`) on `--dapr-grpc-port`, using the
//! message and service types of the official `dapr` crate so every SDK's stubs match.

mod bindings;
mod invoke;
mod metadata;
pub mod proxy;
mod pubsub;
mod service;
pub mod spans;
mod state;
mod status;
mod subscribe;

use std::sync::Arc;

use dapr::dapr::proto::runtime::v1::dapr_server::DaprServer;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

use crate::Api;
pub use status::{http_error_status, to_status};

/// The service implementation handed to tonic.
pub struct DaprGrpc {
    api: Arc<Api>,
}

/// The checks run before every call of the Dapr API: a well-formed `baggage`, then
/// the API token.
#[derive(Clone)]
pub struct TokenCheck(Option<Arc<str>>);

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        spans::check_baggage(req.metadata())?;
        status::check_token(self.0.as_deref(), req)
    }
}

/// Builds the Dapr gRPC service with `DAPR_API_TOKEN` enforcement and the message-size
/// limit from `--max-body-size`.
pub fn service(api: Arc<Api>) -> InterceptedService<DaprServer<DaprGrpc>, TokenCheck> {
    let limit = api.max_body_size;
    let token = TokenCheck(api.api_token.as_deref().map(Arc::from));
    let server = DaprServer::new(DaprGrpc { api })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    InterceptedService::new(server, token)
}

/// Wraps the gRPC server: maps tonic's size-limit status onto grpc-go's, and records
/// each call's method, status and latency.
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: Option<Arc<metrics::Metrics>>,
}

/// The layer that builds [`Metered`].
#[derive(Clone)]
pub struct MeteredLayer(pub Option<Arc<metrics::Metrics>>);

impl<S> tower::Layer<S> for MeteredLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            metrics: self.0.clone(),
        }
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let metrics = self.metrics.clone();
        let uri = metrics.as_ref().map(|_| req.uri().clone());
        let started = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let code = dapr_size_limit_status(&mut resp);
            if let (Some(m), Some(uri)) = (metrics, uri) {
                m.grpc_call(uri.path(), code, started.elapsed());
                let tag = resp
                    .extensions()
                    .get::<Status>()
                    .and_then(|s| std::error::Error::source(s))
                    .and_then(|e| e.downcast_ref::<crate::ErrorCodeTag>());
                if let Some(tag) = tag {
                    m.error_code(tag.code, tag.category);
                }
            }
            Ok(resp)
        })
    }
}

/// tonic reports a request over the size limit as `OUT_OF_RANGE`; grpc-go, and so Dapr,
/// as `RESOURCE_EXHAUSTED`. Clients branch on the code, so that one status is rewritten.
/// Returns the call's status code as far as the response head tells (unary calls that
/// succeed carry it in trailers, so no code in the head means OK).
fn dapr_size_limit_status<B>(resp: &mut http::Response<B>) -> u8 {
    let headers = resp.headers_mut();
    let code = headers
        .get("grpc-status")
        .and_then(|s| s.to_str().ok())
        .and_then(|s| s.parse::<u8>().ok())
        .unwrap_or(0);
    let too_large = code == 11
        && headers.get("grpc-message").is_some_and(|m| {
            m.to_str().is_ok_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            })
        });
    if too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        return 8;
    }
    code
}
