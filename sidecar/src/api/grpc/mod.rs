//! Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`) on `--dapr-grpc-port`, using the
//! message and service types of the official `dapr` crate so every SDK's stubs match.

mod metadata;
mod service;
mod state;
mod status;

use std::sync::Arc;

use dapr::dapr::proto::runtime::v1::dapr_server::DaprServer;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

use crate::api::Api;
pub use status::to_status;

/// The service implementation handed to tonic.
pub struct DaprGrpc {
    api: Arc<Api>,
}

/// The token check run before every gRPC call.
#[derive(Clone)]
pub struct TokenCheck(Option<Arc<str>>);

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
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

/// tonic reports a request over the size limit as `OUT_OF_RANGE`; grpc-go, and so Dapr,
/// as `RESOURCE_EXHAUSTED`. Clients branch on the code, so the one status is rewritten.
pub fn dapr_size_limit_status<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let headers = resp.headers_mut();
    let too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers.get("grpc-message").is_some_and(|m| {
            m.to_str().is_ok_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            })
        });
    if too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    resp
}
