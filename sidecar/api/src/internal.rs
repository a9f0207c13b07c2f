//! The internal gRPC API on `--dapr-internal-grpc-port`, called by other sidecars:
//! `dapr.proto.internals.v1.ServiceInvocation`.

use std::pin::Pin;
use std::sync::Arc;

use blocks::invoke_stream::payload_body;
use futures::{Stream, StreamExt};
use proto::internals::v1::service_invocation_server::{ServiceInvocation, ServiceInvocationServer};
use proto::internals::v1::{
    InternalInvokeRequest, InternalInvokeRequestStream, InternalInvokeResponse,
    InternalInvokeResponseStream,
};
use tonic::{Request, Response, Status, Streaming};

use crate::Api;
use blocks::access::{AccessDenied, Caller};
use blocks::invoke::{
    CALLER_APP_ID, CALLER_NAMESPACE, from_internal_request, from_internal_request_head,
    to_internal_response,
};

pub struct Internal {
    api: Arc<Api>,
}

/// The service, with message limits from `--max-body-size`.
pub fn service(api: Arc<Api>) -> ServiceInvocationServer<Internal> {
    let limit = api.max_body_size;
    ServiceInvocationServer::new(Internal { api })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit)
}

/// The SPIFFE identity of the calling sidecar, from its client certificate (mTLS only).
pub fn peer_identity(extensions: &http::Extensions) -> Option<security::SpiffeId> {
    let info = extensions
        .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>(
        )?;
    let certs = info.peer_certs()?;
    security::peer_id(&certs)
}

/// Who is calling. Under mTLS that is the certificate's identity, and the caller headers
/// are rewritten to match it, so no sidecar can speak for another; without mTLS it is
/// what the calling sidecar says, in the default trust domain.
pub fn caller(
    api: &Api,
    peer: Option<security::SpiffeId>,
    headers: &mut http::HeaderMap,
) -> Result<Caller, Status> {
    if api.invoke.mtls().is_some() {
        let id = peer.ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        for (name, value) in [
            (CALLER_APP_ID, &id.app_id),
            (CALLER_NAMESPACE, &id.namespace),
        ] {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
        return Ok(Caller {
            trust_domain: id.trust_domain,
            namespace: id.namespace,
            app_id: id.app_id,
        });
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let namespace = match header(CALLER_NAMESPACE) {
        ns if ns.is_empty() => api.invoke.namespace().to_string(),
        ns => ns,
    };
    Ok(Caller {
        trust_domain: security::DEFAULT_TRUST_DOMAIN.to_string(),
        namespace,
        app_id: header(CALLER_APP_ID),
    })
}

/// An access control refusal, as Dapr answers it.
pub fn denied(e: AccessDenied) -> Status {
    Status::permission_denied(e.to_string())
}

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<InternalInvokeResponseStream, Status>> + Send>>;

#[tonic::async_trait]
impl ServiceInvocation for Internal {
    async fn call_local(
        &self,
        request: Request<InternalInvokeRequest>,
    ) -> Result<Response<InternalInvokeResponse>, Status> {
        let peer = peer_identity(request.extensions());
        let mut req = from_internal_request(request.into_inner());
        crate::grpc::spans::annotate_invoke(self.api.invoke.app_id(), &req.path, false);
        let who = caller(&self.api, peer, &mut req.headers)?;
        self.api
            .invoke
            .authorize(&who, &req.path, req.method.as_str())
            .map_err(denied)?;
        let resp = self
            .api
            .invoke
            .call_local(req)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(to_internal_response(resp)))
    }

    async fn call_actor(
        &self,
        _request: Request<InternalInvokeRequest>,
    ) -> Result<Response<InternalInvokeResponse>, Status> {
        Err(Status::unimplemented(
            "actors are not supported by this sidecar yet",
        ))
    }

    type CallLocalStreamStream = ResponseStream;

    async fn call_local_stream(
        &self,
        request: Request<Streaming<InternalInvokeRequestStream>>,
    ) -> Result<Response<Self::CallLocalStreamStream>, Status> {
        let peer = peer_identity(request.extensions());
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty request stream"))?;
        let request = first
            .request
            .ok_or_else(|| Status::invalid_argument("the first message must carry the request"))?;
        let mut head = from_internal_request_head(request);
        crate::grpc::spans::annotate_invoke(self.api.invoke.app_id(), &head.path, false);
        let who = caller(&self.api, peer, &mut head.headers)?;
        self.api
            .invoke
            .authorize(&who, &head.path, head.method.as_str())
            .map_err(denied)?;
        let body = payload_body(first.payload, inbound, |m| m.payload);
        let messages = self
            .api
            .invoke
            .serve_local_stream(head, body)
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map(|m| m.map_err(|e| Status::internal(e.to_string())));
        Ok(Response::new(Box::pin(messages)))
    }
}
