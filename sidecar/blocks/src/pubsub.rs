//! The publish side of pub/sub: the loaded brokers, and one publish as Dapr makes it —
//! the request checked, the body wrapped in a CloudEvent 1.0 envelope (or passed through
//! as the caller's own CloudEvent with Dapr's defaults filled in, or sent raw with
//! `metadata.rawPayload=true`), then handed to the broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use components_core::pubsub::{PubSub, Publish};
use http::StatusCode;
use serde_json::{Map, Value};

use crate::errors::{Code, DaprError};
use crate::table::Table;

/// The type of every event Dapr publishes for an app.
pub const EVENT_TYPE: &str = "com.dapr.event.sent";
/// The CloudEvents content type.
pub const CLOUDEVENT_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The content type of a body published without one.
const DEFAULT_CONTENT_TYPE: &str = "text/plain";

/// One publish request, as both front doors hand it over.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub pubsub: String,
    pub topic: String,
    pub data: Bytes,
    /// The request's `Content-Type` (`data_content_type` over gRPC).
    pub content_type: Option<String>,
    /// `metadata.*` query parameters, or the gRPC request's metadata.
    pub metadata: HashMap<String, String>,
    /// The current span's `traceparent` and `tracestate`, when tracing.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// The loaded brokers by component name, and the app they publish for.
pub struct PubSubBlock {
    brokers: Table<Arc<dyn PubSub>>,
    app_id: String,
}

fn content_type_is(ct: &str, want: &str) -> bool {
    ct.split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(want))
}

fn is_json(ct: &str) -> bool {
    let media = ct.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
        || media.eq_ignore_ascii_case("text/json")
        || media.to_ascii_lowercase().ends_with("+json")
}

fn is_binary(ct: &str) -> bool {
    content_type_is(ct, "application/octet-stream")
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "1" | "t" | "y" | "yes" | "on"
        )
    })
}

/// The envelope's fields the request's `cloudevent.*` metadata may set, as Dapr reads them.
const OVERRIDES: [&str; 5] = ["id", "source", "type", "traceparent", "tracestate"];

impl PubSubBlock {
    pub fn new(app_id: &str) -> Self {
        Self {
            brokers: Table::default(),
            app_id: app_id.to_string(),
        }
    }

    /// Adds or replaces a broker while the sidecar runs.
    pub fn upsert(&self, name: &str, broker: Arc<dyn PubSub>) {
        self.brokers.upsert(name, broker);
    }

    /// Removes a broker; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.brokers.remove(name)
    }

    /// The broker called `name`, if loaded.
    pub fn broker(&self, name: &str) -> Option<Arc<dyn PubSub>> {
        self.brokers.get(name)
    }

    /// Publishes one message; the errors are Dapr's.
    pub async fn publish(&self, req: PublishRequest) -> Result<(), DaprError> {
        if self.brokers.load().is_empty() {
            return Err(errors::not_configured(&req.pubsub));
        }
        if req.pubsub.is_empty() {
            return Err(errors::name_empty());
        }
        let broker = self
            .broker(&req.pubsub)
            .ok_or_else(|| errors::not_found(&req.pubsub))?;
        if req.topic.is_empty() {
            return Err(errors::topic_empty(&req.pubsub));
        }
        let raw = truthy(req.metadata.get("rawPayload"));
        let (data, content_type) = if raw {
            (req.data.clone(), req.content_type.clone())
        } else {
            let envelope = self.envelope(&req, SystemTime::now())?;
            let bytes = serde_json::to_vec(&envelope)
                .map_err(|e| errors::cloud_event_ser(&req, &e.to_string()))?;
            (
                Bytes::from(bytes),
                Some(CLOUDEVENT_CONTENT_TYPE.to_string()),
            )
        };
        broker
            .publish(Publish {
                topic: req.topic.clone(),
                data,
                content_type,
                metadata: req.metadata.clone(),
            })
            .await
            .map_err(|e| errors::publish_failed(&req, &e.to_string()))
    }

    /// The CloudEvent Dapr publishes for `req` at `now`.
    pub fn envelope(&self, req: &PublishRequest, now: SystemTime) -> Result<Value, DaprError> {
        let content_type = req
            .content_type
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        let traceparent = req.traceparent.clone().unwrap_or_default();
        let tracestate = req.tracestate.clone().unwrap_or_default();
        let mut ce = if content_type_is(&content_type, CLOUDEVENT_CONTENT_TYPE) {
            // The caller's own CloudEvent: Dapr's routing fields set, its defaults filled.
            let mut ce: Map<String, Value> = serde_json::from_slice(&req.data)
                .map_err(|e| errors::cloud_event_ser(req, &e.to_string()))?;
            for (k, v) in [
                ("traceid", &traceparent),
                ("traceparent", &traceparent),
                ("tracestate", &tracestate),
                ("topic", &req.topic),
                ("pubsubname", &req.pubsub),
            ] {
                ce.insert(k.into(), Value::String(v.clone()));
            }
            for (k, v) in [
                ("source", "Dapr"),
                ("type", EVENT_TYPE),
                ("specversion", "1.0"),
            ] {
                ce.entry(k).or_insert_with(|| Value::String(v.into()));
            }
            ce
        } else {
            let mut fields: HashMap<&str, String> = HashMap::from([
                ("id", uuid::Uuid::new_v4().to_string()),
                ("source", self.app_id.clone()),
                ("type", EVENT_TYPE.to_string()),
                ("traceparent", traceparent),
                ("tracestate", tracestate),
            ]);
            for key in OVERRIDES {
                if let Some(v) = req.metadata.get(&format!("cloudevent.{key}")) {
                    fields.insert(key, v.clone());
                }
            }
            let take = |k: &str, fields: &mut HashMap<&str, String>| {
                Value::String(fields.remove(k).unwrap_or_default())
            };
            let mut ce = Map::new();
            ce.insert("id".into(), take("id", &mut fields));
            ce.insert("specversion".into(), Value::String("1.0".into()));
            ce.insert(
                "datacontenttype".into(),
                Value::String(content_type.clone()),
            );
            ce.insert("source".into(), take("source", &mut fields));
            ce.insert("type".into(), take("type", &mut fields));
            ce.insert("topic".into(), Value::String(req.topic.clone()));
            ce.insert("pubsubname".into(), Value::String(req.pubsub.clone()));
            let traceparent = take("traceparent", &mut fields);
            ce.insert("traceid".into(), traceparent.clone());
            ce.insert("traceparent".into(), traceparent);
            ce.insert("tracestate".into(), take("tracestate", &mut fields));
            ce.insert("time".into(), Value::String(kit::time::rfc3339(now)));
            if is_json(&content_type) {
                // JSON that does not parse is sent as the text it is, as in Dapr.
                let data = serde_json::from_slice(&req.data).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&req.data).into_owned())
                });
                ce.insert("data".into(), data);
            } else if is_binary(&content_type) {
                ce.insert(
                    "data_base64".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&req.data)),
                );
            } else {
                ce.insert(
                    "data".into(),
                    Value::String(String::from_utf8_lossy(&req.data).into_owned()),
                );
            }
            ce
        };
        if let Some(ttl) = req.metadata.get("ttlInSeconds") {
            let seconds: u64 = ttl.trim().parse().map_err(|_| errors::bad_ttl(req, ttl))?;
            ce.insert(
                "expiration".into(),
                Value::String(kit::time::rfc3339(now + Duration::from_secs(seconds))),
            );
        }
        Ok(Value::Object(ce))
    }
}

/// Dapr's pub/sub errors, with its codes, statuses and messages.
pub mod errors {
    use super::*;

    /// Dapr 1.18's pub/sub errors are rich: `ErrorInfo` with a `DAPR_PUBSUB_*` reason.
    fn pubsub(
        code: &'static str,
        reason: &'static str,
        message: String,
        http: StatusCode,
        grpc: Code,
    ) -> DaprError {
        DaprError::new(code, message, http, grpc).rich(reason)
    }

    pub fn not_configured(name: &str) -> DaprError {
        pubsub(
            "ERR_PUBSUB_NOT_CONFIGURED",
            "DAPR_PUBSUB_NOT_CONFIGURED",
            format!("pubsub {name} is not configured"),
            StatusCode::BAD_REQUEST,
            Code::FailedPrecondition,
        )
    }

    pub fn name_empty() -> DaprError {
        pubsub(
            "ERR_PUBSUB_EMPTY",
            "DAPR_PUBSUB_NAME_EMPTY",
            "pubsub name is empty".into(),
            StatusCode::NOT_FOUND,
            Code::InvalidArgument,
        )
    }

    pub fn not_found(name: &str) -> DaprError {
        pubsub(
            "ERR_PUBSUB_NOT_FOUND",
            "DAPR_PUBSUB_NOT_FOUND",
            format!("pubsub {name} is not found"),
            StatusCode::NOT_FOUND,
            Code::InvalidArgument,
        )
    }

    pub fn topic_empty(name: &str) -> DaprError {
        pubsub(
            "ERR_TOPIC_NAME_EMPTY",
            "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
            format!("topic is empty in pubsub {name}"),
            StatusCode::NOT_FOUND,
            Code::InvalidArgument,
        )
    }

    pub fn cloud_event_ser(req: &PublishRequest, why: &str) -> DaprError {
        pubsub(
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
            "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
            format!(
                "cannot create cloudevent for topic {} pubsub {}: {why}",
                req.topic, req.pubsub
            ),
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::InvalidArgument,
        )
    }

    pub fn bad_ttl(req: &PublishRequest, ttl: &str) -> DaprError {
        pubsub(
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
            "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
            format!(
                "cannot create cloudevent for topic {} pubsub {}: ttlInSeconds {ttl:?} is not a whole number of seconds",
                req.topic, req.pubsub
            ),
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
        )
    }

    pub fn publish_failed(req: &PublishRequest, why: &str) -> DaprError {
        pubsub(
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            "DAPR_PUBSUB_PUBLISH_MESSAGE",
            format!(
                "error when publishing to topic {} in pubsub {}: {why}",
                req.topic, req.pubsub
            ),
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn block() -> PubSubBlock {
        PubSubBlock::new("checkout")
    }

    fn req(data: &[u8], content_type: Option<&str>) -> PublishRequest {
        PublishRequest {
            pubsub: "pubsub".into(),
            topic: "orders".into(),
            data: Bytes::copy_from_slice(data),
            content_type: content_type.map(str::to_string),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            ..Default::default()
        }
    }

    const NOW: Duration = Duration::from_secs(1_700_000_000);

    #[test]
    fn json_bodies_become_data_with_daprs_fields() {
        let ce = block()
            .envelope(
                &req(br#"{"orderId": 1}"#, Some("application/json")),
                SystemTime::UNIX_EPOCH + NOW,
            )
            .expect("envelope");
        assert_eq!(ce["data"], json!({"orderId": 1}));
        assert_eq!(ce["datacontenttype"], "application/json");
        assert_eq!(ce["source"], "checkout");
        assert_eq!(ce["type"], "com.dapr.event.sent");
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["topic"], "orders");
        assert_eq!(ce["pubsubname"], "pubsub");
        assert_eq!(ce["traceid"], ce["traceparent"]);
        assert_eq!(ce["tracestate"], "");
        assert_eq!(ce["time"], "2023-11-14T22:13:20Z");
        assert!(uuid::Uuid::parse_str(ce["id"].as_str().expect("id")).is_ok());
        assert!(ce.get("data_base64").is_none());
        assert!(ce.get("expiration").is_none());
    }

    #[test]
    fn text_binary_and_broken_json_bodies() {
        let at = SystemTime::UNIX_EPOCH + NOW;
        let text = block().envelope(&req(b"hello", None), at).expect("text");
        assert_eq!(text["data"], "hello");
        assert_eq!(text["datacontenttype"], "text/plain");
        let bin = block()
            .envelope(&req(&[0, 159, 146], Some("application/octet-stream")), at)
            .expect("binary");
        assert_eq!(bin["data_base64"], "AJ+S");
        assert!(bin.get("data").is_none());
        let broken = block()
            .envelope(&req(b"{nope", Some("application/json")), at)
            .expect("broken json");
        assert_eq!(broken["data"], "{nope");
    }

    #[test]
    fn a_cloudevent_body_passes_with_defaults_and_routing_fields() {
        let body =
            br#"{"id": "mine", "source": "elsewhere", "data": {"a": 1}, "topic": "spoofed"}"#;
        let ce = block()
            .envelope(
                &req(body, Some("application/cloudevents+json")),
                SystemTime::UNIX_EPOCH + NOW,
            )
            .expect("envelope");
        assert_eq!(ce["id"], "mine");
        assert_eq!(ce["source"], "elsewhere");
        assert_eq!(ce["type"], "com.dapr.event.sent");
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["topic"], "orders", "Dapr sets the topic it publishes to");
        assert_eq!(ce["data"], json!({"a": 1}));
        let err = block()
            .envelope(
                &req(b"not json", Some("application/cloudevents+json")),
                SystemTime::UNIX_EPOCH,
            )
            .expect_err("not a CloudEvent");
        assert_eq!(err.code, "ERR_PUBSUB_CLOUD_EVENTS_SER");
    }

    #[test]
    fn ttl_sets_expiration_and_cloudevent_metadata_overrides() {
        let mut r = req(b"x", None);
        r.metadata.insert("ttlInSeconds".into(), "60".into());
        r.metadata.insert("cloudevent.id".into(), "fixed".into());
        r.metadata
            .insert("cloudevent.type".into(), "my.type".into());
        let ce = block()
            .envelope(&r, SystemTime::UNIX_EPOCH + NOW)
            .expect("envelope");
        assert_eq!(ce["expiration"], "2023-11-14T22:14:20Z");
        assert_eq!(
            (&ce["id"], &ce["type"]),
            (&json!("fixed"), &json!("my.type"))
        );
        r.metadata.insert("ttlInSeconds".into(), "soon".into());
        assert!(block().envelope(&r, SystemTime::UNIX_EPOCH).is_err());
    }

    #[tokio::test]
    async fn requests_are_checked_in_daprs_order() {
        let b = block();
        let code = |r: Result<(), DaprError>| r.expect_err("refused").code;
        assert_eq!(
            code(b.publish(req(b"", None)).await),
            "ERR_PUBSUB_NOT_CONFIGURED"
        );
        b.upsert("pubsub", Arc::new(Dummy));
        let mut r = req(b"", None);
        r.pubsub.clear();
        assert_eq!(code(b.publish(r).await), "ERR_PUBSUB_EMPTY");
        let mut r = req(b"", None);
        r.pubsub = "nope".into();
        let err = b.publish(r).await.expect_err("unknown");
        assert_eq!(err.code, "ERR_PUBSUB_NOT_FOUND");
        assert_eq!(err.message, "pubsub nope is not found");
        let mut r = req(b"", None);
        r.topic.clear();
        assert_eq!(code(b.publish(r).await), "ERR_TOPIC_NAME_EMPTY");
        let err = b.publish(req(b"x", None)).await.expect_err("broker fails");
        assert_eq!(err.code, "ERR_PUBSUB_PUBLISH_MESSAGE");
        assert_eq!(err.http, StatusCode::INTERNAL_SERVER_ERROR);
    }

    struct Dummy;

    #[async_trait::async_trait]
    impl components_core::Component for Dummy {}

    #[async_trait::async_trait]
    impl PubSub for Dummy {
        async fn publish(&self, _: Publish) -> Result<(), components_core::pubsub::PubSubError> {
            Err(components_core::pubsub::PubSubError::Backend("down".into()))
        }

        async fn subscribe(
            &self,
            _: components_core::pubsub::Subscribe,
            _: components_core::pubsub::Handler,
        ) -> Result<
            Box<dyn components_core::pubsub::Subscription>,
            components_core::pubsub::PubSubError,
        > {
            Err(components_core::pubsub::PubSubError::Closed)
        }
    }
}
