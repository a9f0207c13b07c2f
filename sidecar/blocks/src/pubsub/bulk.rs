//! Bulk publish: many entries to one topic in one request, each wrapped in its own
//! CloudEvent (unless raw), published concurrently; the entries that failed are named.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use base64::Engine;
use bytes::Bytes;
use components_core::pubsub::Publish;
use futures::StreamExt;
use serde_json::Value;

use super::envelope::is_content_type;
use super::{CLOUDEVENT_CONTENT_TYPE, EnvelopeInput, PubSubBlock, envelope, errors, raw_payload};
use crate::errors::DaprError;

/// How many entries are published at once.
const CONCURRENCY: usize = 100;

/// One entry of a bulk request.
#[derive(Debug, Clone, Default)]
pub struct BulkEntry {
    pub entry_id: String,
    pub event: Bytes,
    pub content_type: String,
    /// The entry's own metadata; when present, the request's fills in what it lacks.
    pub metadata: Option<HashMap<String, String>>,
}

/// A bulk publish request, as both front doors hand it over.
#[derive(Debug, Clone, Default)]
pub struct BulkPublishRequest {
    pub pubsub: String,
    pub topic: String,
    pub entries: Vec<BulkEntry>,
    pub metadata: HashMap<String, String>,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// An entry the broker did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    pub entry_id: String,
    pub error: String,
}

/// Why a bulk publish did not fully succeed.
#[derive(Debug)]
pub enum BulkError {
    /// Nothing was published.
    Refused(DaprError),
    /// Some entries were not published (`failed`); the error is Dapr's publish error.
    Partial {
        failed: Vec<FailedEntry>,
        error: DaprError,
    },
}

impl From<DaprError> for BulkError {
    fn from(e: DaprError) -> Self {
        BulkError::Refused(e)
    }
}

/// An HTTP bulk entry's `event` as the bytes Dapr publishes: base64 for binary content,
/// the string for text, JSON for JSON and CloudEvents; anything else is a mismatch.
pub fn event_bytes(event: &Value, content_type: &str) -> Result<Bytes, String> {
    const MISMATCH: &str = "error: mismatch between contentType and event";
    let lower = content_type.to_ascii_lowercase();
    if is_content_type(content_type, "application/octet-stream") {
        let text = event.as_str().ok_or(MISMATCH)?;
        return base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(|e| {
                format!("error: unable to decode base64 application/octect-stream data: {e}")
            });
    }
    if lower.starts_with("text/") || is_content_type(content_type, "application/xml") {
        return event
            .as_str()
            .map(|s| Bytes::from(s.to_string()))
            .ok_or_else(|| MISMATCH.to_string());
    }
    if is_content_type(content_type, "application/json")
        || is_content_type(content_type, CLOUDEVENT_CONTENT_TYPE)
    {
        return serde_json::to_vec(event)
            .map(Bytes::from)
            .map_err(|e| format!("{MISMATCH}: {e}"));
    }
    Err(MISMATCH.to_string())
}

impl PubSubBlock {
    /// Publishes every entry; the errors are Dapr's.
    pub async fn bulk_publish(&self, req: BulkPublishRequest) -> Result<(), BulkError> {
        let broker = self.target(&req.pubsub, &req.topic)?;
        let raw =
            raw_payload(&req.metadata).map_err(|why| errors::bad_metadata(&req.pubsub, &why))?;
        let mut seen = HashSet::with_capacity(req.entries.len());
        let now = SystemTime::now();
        let mut messages = Vec::with_capacity(req.entries.len());
        for entry in &req.entries {
            if entry.entry_id.is_empty() || !seen.insert(entry.entry_id.as_str()) {
                return Err(errors::marshal_events(&req.pubsub, &req.topic, &self.app_id).into());
            }
            let metadata = match &entry.metadata {
                Some(own) => {
                    let mut md = own.clone();
                    for (k, v) in &req.metadata {
                        md.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    md
                }
                None => HashMap::new(),
            };
            let data = if raw {
                entry.event.clone()
            } else {
                let ce = envelope(
                    &EnvelopeInput {
                        app_id: &self.app_id,
                        pubsub: &req.pubsub,
                        topic: &req.topic,
                        data: &entry.event,
                        content_type: Some(entry.content_type.as_str()),
                        metadata: &metadata,
                        traceparent: req.traceparent.as_deref().unwrap_or_default(),
                        tracestate: req.tracestate.as_deref().unwrap_or_default(),
                        broker_has_ttl: broker.has_ttl,
                    },
                    now,
                )
                .map_err(|why| errors::cloud_event_ser(&req.pubsub, &self.app_id, &why))?;
                Bytes::from(serde_json::to_vec(&ce).map_err(|e| {
                    errors::marshal_envelope(&req.pubsub, &req.topic, &self.app_id, &e.to_string())
                })?)
            };
            messages.push((
                entry.entry_id.clone(),
                data,
                entry.content_type.clone(),
                metadata,
            ));
        }
        if !broker.scopes.may_publish(&req.topic) {
            return Err(errors::forbidden(&req.pubsub, &req.topic, &self.app_id).into());
        }
        let topic = &req.topic;
        let failed: Vec<FailedEntry> = futures::stream::iter(messages)
            .map(|(entry_id, data, content_type, metadata)| {
                let api = broker.api.clone();
                async move {
                    let content_type = if raw {
                        Some(content_type).filter(|c| !c.is_empty())
                    } else {
                        Some(CLOUDEVENT_CONTENT_TYPE.to_string())
                    };
                    api.publish(Publish {
                        topic: topic.clone(),
                        data,
                        content_type,
                        metadata,
                    })
                    .await
                    .err()
                    .map(|e| FailedEntry {
                        entry_id,
                        error: e.to_string(),
                    })
                }
            })
            .buffer_unordered(CONCURRENCY)
            .filter_map(|f| async move { f })
            .collect()
            .await;
        if let Some(first) = failed.first() {
            let error = errors::publish_failed(
                &super::PublishRequest {
                    pubsub: req.pubsub.clone(),
                    topic: req.topic.clone(),
                    ..Default::default()
                },
                &first.error,
            );
            return Err(BulkError::Partial { failed, error });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_become_bytes_by_content_type() {
        assert_eq!(
            event_bytes(&json!({"a": 1}), "application/json").unwrap(),
            &br#"{"a":1}"#[..]
        );
        assert_eq!(event_bytes(&json!("hi"), "text/plain").unwrap(), &b"hi"[..]);
        assert_eq!(
            event_bytes(&json!("aGk="), "application/octet-stream").unwrap(),
            &b"hi"[..]
        );
        assert!(event_bytes(&json!(1), "text/plain").is_err());
        assert!(event_bytes(&json!("%%"), "application/octet-stream").is_err());
        assert!(event_bytes(&json!("x"), "image/png").is_err());
    }
}
