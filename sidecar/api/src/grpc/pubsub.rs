//! gRPC `PublishEvent`: the same publish as over HTTP, the content type from
//! `data_content_type` and the metadata from the request's map.

use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Status;

use blocks::pubsub::PublishRequest;
use blocks::pubsub::bulk::{BulkEntry, BulkError, BulkPublishRequest};

use super::DaprGrpc;
use super::status::{OrStatus, to_status};

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

impl DaprGrpc {
    /// `BulkPublishEvent` (and its alpha name): a partial failure is Dapr's publish error,
    /// as Dapr answers it over gRPC.
    pub(super) async fn bulk_publish_impl(
        &self,
        req: pb::BulkPublishRequest,
    ) -> Result<pb::BulkPublishResponse, Status> {
        let context = trace::current_context();
        let result = self
            .api
            .pubsub
            .bulk_publish(BulkPublishRequest {
                pubsub: req.pubsub_name,
                topic: req.topic,
                entries: req
                    .entries
                    .into_iter()
                    .map(|e| BulkEntry {
                        entry_id: e.entry_id,
                        event: e.event.into(),
                        content_type: e.content_type,
                        metadata: (!e.metadata.is_empty()).then_some(e.metadata),
                    })
                    .collect(),
                metadata: req.metadata,
                traceparent: context.as_ref().map(|c| c.traceparent()),
                tracestate: context.and_then(|c| c.trace_state.map(|s| s.to_string())),
            })
            .await;
        match result {
            Ok(()) => Ok(pb::BulkPublishResponse::default()),
            Err(BulkError::Refused(e)) | Err(BulkError::Partial { error: e, .. }) => {
                Err(to_status(&e))
            }
        }
    }
}
