//! `POST|PUT /v1.0/publish/{pubsub}/{topic...}`: the body published to a topic (which may
//! hold `/`), `metadata.*` query parameters passed on; 204 when the broker has it. And
//! bulk publish (`/v1.0[-alpha1]/publish/bulk/...`): a JSON list of entries; a partial
//! failure is a 500 naming the entries that failed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use blocks::pubsub::PublishRequest;
use blocks::pubsub::bulk::{BulkEntry, BulkError, BulkPublishRequest, event_bytes};
use blocks::pubsub::errors;

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson {
    #[serde(default)]
    entry_id: String,
    #[serde(default)]
    event: serde_json::Value,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    metadata: Option<std::collections::HashMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FailedJson<'a> {
    entry_id: &'a str,
    error: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartialJson<'a> {
    failed_entries: Vec<FailedJson<'a>>,
    error_code: &'static str,
}

/// `POST /v1.0[-alpha1]/publish/bulk/{pubsub}/{topic...}`.
pub async fn bulk_publish(
    State(api): State<Arc<Api>>,
    Path((pubsub, topic)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, HttpError> {
    // The pub/sub and topic are checked before the body is read, as in Dapr.
    api.pubsub.check_target(&pubsub, &topic)?;
    let app_id = api.pubsub.app_id().to_string();
    let entries: Vec<EntryJson> = serde_json::from_slice(&body)
        .map_err(|e| errors::unmarshal_events(&pubsub, &topic, &app_id, &e.to_string()))?;
    let mut converted = Vec::with_capacity(entries.len());
    for e in entries {
        let event = event_bytes(&e.event, &e.content_type)
            .map_err(|why| errors::marshal_envelope(&pubsub, &topic, &app_id, &why))?;
        converted.push(BulkEntry {
            entry_id: e.entry_id,
            event,
            content_type: e.content_type,
            metadata: e.metadata,
        });
    }
    let context = trace::current_context();
    let result = api
        .pubsub
        .bulk_publish(BulkPublishRequest {
            pubsub,
            topic,
            entries: converted,
            metadata: params.metadata,
            traceparent: context.as_ref().map(|c| c.traceparent()),
            tracestate: context.and_then(|c| c.trace_state.map(|s| s.to_string())),
        })
        .await;
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(BulkError::Refused(e)) => Err(e.into()),
        Err(BulkError::Partial { failed, error }) => {
            let body = PartialJson {
                failed_entries: failed
                    .iter()
                    .map(|f| FailedJson {
                        entry_id: &f.entry_id,
                        error: &f.error,
                    })
                    .collect(),
                error_code: error.code,
            };
            let json = serde_json::to_vec(&body).unwrap_or_default();
            let mut resp = (error.http, json).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
    }
}
