//! `POST|PUT /v1.0/publish/{pubsub}/{topic...}`: the body published to a topic (which may
//! hold `/`), `metadata.*` query parameters passed on; 204 when the broker has it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};

use blocks::pubsub::PublishRequest;

use super::errors::HttpError;
use super::params::Params;
use crate::Api;

async fn publish_to(
    api: &Api,
    pubsub: String,
    topic: String,
    headers: &HeaderMap,
    params: Params,
    body: Bytes,
) -> Result<StatusCode, HttpError> {
    let context = trace::current_context();
    api.pubsub
        .publish(PublishRequest {
            pubsub,
            topic,
            data: body,
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            metadata: params.metadata,
            traceparent: context.as_ref().map(|c| c.traceparent()),
            tracestate: context.and_then(|c| c.trace_state.map(|s| s.to_string())),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A topic under a pub/sub.
pub async fn publish(
    State(api): State<Arc<Api>>,
    Path((pubsub, topic)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Result<StatusCode, HttpError> {
    publish_to(&api, pubsub, topic, &headers, params, body).await
}

/// No topic at all: Dapr's `ERR_TOPIC_NAME_EMPTY` (or the pub/sub's own error first).
pub async fn publish_without_topic(
    State(api): State<Arc<Api>>,
    Path(pubsub): Path<String>,
    headers: HeaderMap,
    params: Params,
    body: Bytes,
) -> Result<StatusCode, HttpError> {
    publish_to(&api, pubsub, String::new(), &headers, params, body).await
}
