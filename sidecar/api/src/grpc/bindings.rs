//! gRPC `InvokeBinding`: the data passed on as sent, the response data and metadata back.

use components_core::bindings::InvokeRequest;
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Status;

use super::DaprGrpc;
use super::status::OrStatus;

impl DaprGrpc {
    pub(super) async fn invoke_binding_impl(
        &self,
        req: pb::InvokeBindingRequest,
    ) -> Result<pb::InvokeBindingResponse, Status> {
        let mut metadata = req.metadata;
        if let Some(ctx) = trace::current_context() {
            metadata.insert("traceparent".into(), ctx.traceparent());
        }
        let resp = self
            .api
            .bindings
            .invoke(
                &req.name,
                InvokeRequest {
                    operation: req.operation,
                    data: req.data.into(),
                    metadata,
                },
            )
            .await
            .or_status()?;
        Ok(pb::InvokeBindingResponse {
            data: resp.data.to_vec(),
            metadata: resp.metadata,
        })
    }
}
