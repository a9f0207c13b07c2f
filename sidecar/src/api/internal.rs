//! The internal gRPC API on `--dapr-internal-grpc-port`, called by other sidecars:
//! `dapr.proto.internals.v1.ServiceInvocation`.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use proto::internals::v1::service_invocation_server::{ServiceInvocation, ServiceInvocationServer};
use proto::internals::v1::{
    InternalInvokeRequest, InternalInvokeRequestStream, InternalInvokeResponse,
    InternalInvokeResponseStream,
};
use tonic::{Request, Response, Status, Streaming};

use crate::api::Api;
use crate::blocks::invoke::{from_internal_request, to_internal_response};
use crate::blocks::invoke_stream::serve_call_local_stream;

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

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<InternalInvokeResponseStream, Status>> + Send>>;

#[tonic::async_trait]
impl ServiceInvocation for Internal {
    async fn call_local(
        &self,
        request: Request<InternalInvokeRequest>,
    ) -> Result<Response<InternalInvokeResponse>, Status> {
        let req = from_internal_request(request.into_inner());
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
        let stream = serve_call_local_stream(&self.api.invoke, request.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
