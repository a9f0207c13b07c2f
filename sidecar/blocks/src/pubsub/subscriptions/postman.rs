//! Handing one event to whoever subscribed: the app over HTTP or gRPC (Dapr's status
//! semantics decide what the answer means), or a streaming subscriber.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use channel::{AppChannel, AppRequest};
use dapr::dapr::proto::runtime::v1::TopicEventRequest;
use dapr::dapr::proto::runtime::v1::topic_event_response::TopicEventResponseStatus;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use crate::pubsub::{CLOUDEVENT_CONTENT_TYPE, is_content_type};

/// One event on its way to the subscriber.
#[derive(Debug, Clone)]
pub struct SubscribedMessage {
    /// The event as parsed (or synthesized for a raw payload).
    pub cloud_event: Map<String, Value>,
    /// The bytes an HTTP app receives as the body.
    pub data: Bytes,
    pub topic: String,
    pub pubsub: String,
    /// The broker's metadata with `pubsubName` (and the content type) added.
    pub metadata: HashMap<String, String>,
    /// The app path the rules chose.
    pub path: String,
}

/// What the subscriber made of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Success,
    /// Deliver it again (or dead-letter it); the reason is for the log.
    Retry(String),
    /// Never deliver it again (dead-letter it when a topic is set).
    Drop,
}

/// Whoever receives a subscription's events.
#[async_trait]
pub trait Postman: Send + Sync {
    async fn deliver(&self, msg: &SubscribedMessage) -> Delivered;
}

/// The app, over the protocol it speaks.
pub struct AppPostman {
    pub app: Arc<AppChannel>,
}

#[async_trait]
impl Postman for AppPostman {
    async fn deliver(&self, msg: &SubscribedMessage) -> Delivered {
        match self.app.grpc().await {
            Ok(Some(grpc)) => {
                let event = match grpc_envelope(msg) {
                    Ok(e) => e,
                    Err(why) => return Delivered::Retry(why),
                };
                match grpc.on_topic_event(event, &headers_of(msg)).await {
                    Ok(resp) => status_of_grpc(resp.status, msg),
                    // The app will never take this event.
                    Err(s) if s.is_unimplemented() => {
                        tracing::warn!(
                            "non-retriable error returned from app while processing pub/sub event {}: {}",
                            id_of(msg),
                            s.message
                        );
                        Delivered::Success
                    }
                    Err(s) => Delivered::Retry(format!(
                        "error returned from app while processing pub/sub event {}: {}",
                        id_of(msg),
                        s.message
                    )),
                }
            }
            Ok(None) => deliver_http(&self.app, msg).await,
            Err(e) => Delivered::Retry(format!(
                "error returned from app channel while sending pub/sub event to app: {e}"
            )),
        }
    }
}

fn id_of(msg: &SubscribedMessage) -> &str {
    msg.cloud_event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The message's metadata as headers (lower-cased by the header type), the content type
/// last so that the event's own type wins.
fn headers_of(msg: &SubscribedMessage) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(msg.metadata.len() + 1);
    for (k, v) in &msg.metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CLOUDEVENT_CONTENT_TYPE),
    );
    if let Some(tp) = msg
        .cloud_event
        .get("traceparent")
        .or_else(|| msg.cloud_event.get("traceid"))
        .and_then(Value::as_str)
        && let Ok(v) = HeaderValue::from_str(tp)
    {
        headers.insert("traceparent", v);
    }
    headers
}

async fn deliver_http(app: &AppChannel, msg: &SubscribedMessage) -> Delivered {
    let req = AppRequest {
        method: http::Method::POST,
        path: msg.path.trim_start_matches('/').to_string(),
        query: String::new(),
        headers: headers_of(msg),
        body: msg.data.clone(),
        data_type: String::new(),
    };
    let resp = match app.invoke(req).await {
        Ok(r) => r,
        Err(e) => {
            return Delivered::Retry(format!(
                "error returned from app channel while sending pub/sub event to app: {e}"
            ));
        }
    };
    if resp.status.is_success() {
        #[derive(serde::Deserialize)]
        struct AppResponse {
            #[serde(default)]
            status: String,
        }
        // An empty body, or one that is not Dapr's answer, counts as success.
        let Ok(answer) = serde_json::from_slice::<AppResponse>(&resp.body) else {
            return Delivered::Success;
        };
        return match answer.status.as_str() {
            "" | "SUCCESS" => Delivered::Success,
            "RETRY" => Delivered::Retry(format!(
                "RETRY status returned from app while processing pub/sub event {}",
                id_of(msg)
            )),
            "DROP" => {
                tracing::warn!(
                    "DROP status returned from app while processing pub/sub event {}",
                    id_of(msg)
                );
                Delivered::Drop
            }
            other => Delivered::Retry(format!(
                "unknown status returned from app while processing pub/sub event {}, status: {other}",
                id_of(msg)
            )),
        };
    }
    let body = String::from_utf8_lossy(&resp.body);
    if resp.status == StatusCode::NOT_FOUND {
        tracing::error!(
            "non-retriable error returned from app while processing pub/sub event {}: {body}. status code returned: 404",
            id_of(msg)
        );
        return Delivered::Drop;
    }
    Delivered::Retry(format!(
        "retriable error returned from app while processing pub/sub event {}, topic: {}, body: {body}. status code returned: {}",
        id_of(msg),
        msg.topic,
        resp.status.as_u16()
    ))
}

fn status_of_grpc(status: i32, msg: &SubscribedMessage) -> Delivered {
    match TopicEventResponseStatus::try_from(status) {
        Ok(TopicEventResponseStatus::Success) => Delivered::Success,
        Ok(TopicEventResponseStatus::Retry) => Delivered::Retry(format!(
            "RETRY status returned from app while processing pub/sub event {}",
            id_of(msg)
        )),
        Ok(TopicEventResponseStatus::Drop) => {
            tracing::warn!(
                "DROP status returned from app while processing pub/sub event {}",
                id_of(msg)
            );
            Delivered::Drop
        }
        Err(_) => Delivered::Retry(format!(
            "unknown status returned from app while processing pub/sub event {}, status: {status}",
            id_of(msg)
        )),
    }
}

/// The fields a gRPC subscriber gets as its own; everything else is an extension.
const ENVELOPE_FIELDS: [&str; 7] = [
    "id",
    "source",
    "datacontenttype",
    "type",
    "specversion",
    "data",
    "data_base64",
];

/// Text the app gets as it is: `text/*` and `application/xml`, as Dapr decides.
fn is_string_content_type(ct: &str) -> bool {
    ct.to_ascii_lowercase().starts_with("text/") || is_content_type(ct, "application/xml")
}

/// Data Dapr re-encodes as JSON for a gRPC app.
fn is_json_content_type(ct: &str) -> bool {
    is_content_type(ct, "application/json") || is_content_type(ct, CLOUDEVENT_CONTENT_TYPE)
}

/// The `TopicEventRequest` Dapr builds from an event: data decoded from `data_base64`,
/// or as text for textual content, or re-encoded JSON; the rest as extensions.
pub fn grpc_envelope(msg: &SubscribedMessage) -> Result<TopicEventRequest, String> {
    let ce = &msg.cloud_event;
    let field = |k: &str| {
        ce.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let data_content_type = field("datacontenttype");
    let data = if let Some(b64) = ce.get("data_base64").filter(|v| !v.is_null()) {
        let text = b64
            .as_str()
            .ok_or("unexpected data type encountered in envelope")?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("unable to base64 decode cloudEvent field data_base64: {e}"))?
    } else if let Some(data) = ce.get("data").filter(|v| !v.is_null()) {
        if is_string_content_type(&data_content_type) {
            match data {
                Value::String(s) => s.clone().into_bytes(),
                _ => return Err("unexpected data type encountered in envelope".into()),
            }
        } else if is_json_content_type(&data_content_type) {
            serde_json::to_vec(data).unwrap_or_default()
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    let extensions: Map<String, Value> = ce
        .iter()
        .filter(|(k, _)| !ENVELOPE_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(TopicEventRequest {
        id: field("id"),
        source: field("source"),
        r#type: field("type"),
        spec_version: field("specversion"),
        data_content_type,
        data,
        topic: msg.topic.clone(),
        pubsub_name: msg.pubsub.clone(),
        path: msg.path.clone(),
        extensions: Some(crate::pubsub::json_to_struct(extensions)),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msg(ce: Value) -> SubscribedMessage {
        SubscribedMessage {
            cloud_event: ce.as_object().cloned().unwrap_or_default(),
            data: Bytes::new(),
            topic: "orders".into(),
            pubsub: "pubsub".into(),
            metadata: HashMap::from([("pubsubName".to_string(), "pubsub".to_string())]),
            path: "/orders".into(),
        }
    }

    #[test]
    fn grpc_envelope_takes_data_by_content_type() {
        let e = grpc_envelope(&msg(json!({
            "id": "1", "source": "app", "type": "t", "specversion": "1.0",
            "datacontenttype": "application/json", "data": {"a": 1},
            "topic": "orders", "traceid": "x"
        })))
        .unwrap();
        assert_eq!(e.id, "1");
        assert_eq!(e.data, br#"{"a":1}"#);
        assert_eq!(e.path, "/orders");
        let ext = e.extensions.unwrap();
        assert!(ext.fields.contains_key("traceid"));
        assert!(ext.fields.contains_key("topic"));
        assert!(!ext.fields.contains_key("data"));

        let e =
            grpc_envelope(&msg(json!({"datacontenttype": "text/plain", "data": "hi"}))).unwrap();
        assert_eq!(e.data, b"hi");
        let e = grpc_envelope(&msg(json!({"datacontenttype": "application/octet-stream",
            "data_base64": "aGk="})))
        .unwrap();
        assert_eq!(e.data, b"hi");
        assert!(grpc_envelope(&msg(json!({"data_base64": "%%%"}))).is_err());
        assert!(grpc_envelope(&msg(json!({"datacontenttype": "text/plain", "data": 3}))).is_err());
    }

    #[test]
    fn headers_carry_metadata_content_type_and_trace() {
        let h = headers_of(&msg(
            json!({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
        ));
        assert_eq!(h["pubsubname"], "pubsub");
        assert_eq!(h["content-type"], CLOUDEVENT_CONTENT_TYPE);
        assert!(h["traceparent"].to_str().unwrap().starts_with("00-0af7"));
    }
}
