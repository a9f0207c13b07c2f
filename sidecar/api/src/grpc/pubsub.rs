//! gRPC `PublishEvent`: the same publish as over HTTP, the content type from
//! `data_content_type` and the metadata from the request's map.

use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Status;

use blocks::pubsub::PublishRequest;

use super::DaprGrpc;
use super::status::OrStatus;

impl DaprGrpc {
    pub(super) async fn publish_event_impl(
        &self,
        req: pb::PublishEventRequest,
    ) -> Result<(), Status> {
        let context = trace::current_context();
        self.api
            .pubsub
            .publish(PublishRequest {
                pubsub: req.pubsub_name,
                topic: req.topic,
                data: req.data.into(),
                content_type: Some(req.data_content_type).filter(|c| !c.is_empty()),
                metadata: req.metadata,
                traceparent: context.as_ref().map(|c| c.traceparent()),
                tracestate: context.and_then(|c| c.trace_state.map(|s| s.to_string())),
            })
            .await
            .or_status()
    }
}
