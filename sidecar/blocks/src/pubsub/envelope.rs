//! The CloudEvent 1.0 envelope Dapr wraps a published body in, field for field: `data`
//! parsed for `application/json`, `data_base64` for binary content, text otherwise; the
//! caller's own CloudEvent (`application/cloudevents+json`) passed through with Dapr's
//! routing fields and defaults; `cloudevent.*` metadata overriding the generated fields;
//! and an `expiration` from `ttl`/`ttlInSeconds` when the broker has no TTL of its own.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::{Map, Value};

/// The type of every event Dapr publishes for an app.
pub const EVENT_TYPE: &str = "com.dapr.event.sent";
/// The CloudEvents content type.
pub const CLOUDEVENT_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The content type of a body published without one.
const DEFAULT_CONTENT_TYPE: &str = "text/plain";
/// The source of an event whose publisher said none.
pub const DEFAULT_SOURCE: &str = "Dapr";

/// Dapr's media-type test: the whole value, or what comes before a `;`, lower-cased.
pub fn is_content_type(ct: &str, want: &str) -> bool {
    let lower = ct.to_ascii_lowercase();
    match lower.split_once(';') {
        Some((media, _)) => media == want,
        None => lower == want,
    }
}

fn is_binary(ct: &str) -> bool {
    is_content_type(ct, "application/octet-stream")
        || is_content_type(ct, "application/cloudevents+protobuf")
}

/// What the envelope is built from.
pub struct EnvelopeInput<'a> {
    pub app_id: &'a str,
    pub pubsub: &'a str,
    pub topic: &'a str,
    pub data: &'a [u8],
    pub content_type: Option<&'a str>,
    pub metadata: &'a HashMap<String, String>,
    pub traceparent: &'a str,
    pub tracestate: &'a str,
    /// Whether the broker keeps a TTL itself, in which case no `expiration` is written.
    pub broker_has_ttl: bool,
}

/// `cloudevent.<field>` from the metadata, matched without regard to case.
fn meta_override<'m>(md: &'m HashMap<String, String>, field: &str) -> Option<&'m str> {
    let key = format!("cloudevent.{field}");
    md.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&key))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `ttl` or `ttlInSeconds`: a Go duration or whole seconds above zero; anything else is
/// ignored, as Dapr ignores it when building the envelope.
pub fn ttl(md: &HashMap<String, String>) -> Option<Duration> {
    let raw = md
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ttl") || k.eq_ignore_ascii_case("ttlInSeconds"))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())?;
    if let Ok(d) = kit::duration::go(raw) {
        return Some(d);
    }
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Some(Duration::from_secs(n.unsigned_abs())),
        _ => None,
    }
}

/// Builds the envelope at `now`; `Err` carries the parser's reason when the caller's own
/// CloudEvent is not a JSON object.
pub fn envelope(input: &EnvelopeInput<'_>, now: SystemTime) -> Result<Map<String, Value>, String> {
    let content_type = input
        .content_type
        .filter(|c| !c.is_empty())
        .unwrap_or(DEFAULT_CONTENT_TYPE);
    let s = |v: &str| Value::String(v.to_string());
    let mut ce = if is_content_type(content_type, CLOUDEVENT_CONTENT_TYPE) {
        let mut ce: Map<String, Value> =
            serde_json::from_slice(input.data).map_err(|e| e.to_string())?;
        ce.entry("time")
            .or_insert_with(|| s(&kit::time::rfc3339(now)));
        if !ce.contains_key("traceid") {
            ce.insert("traceid".into(), s(input.traceparent));
            ce.insert("traceparent".into(), s(input.traceparent));
        }
        ce.entry("tracestate")
            .or_insert_with(|| s(input.tracestate));
        ce.insert("topic".into(), s(input.topic));
        ce.insert("pubsubname".into(), s(input.pubsub));
        for (k, v) in [
            ("source", DEFAULT_SOURCE),
            ("type", EVENT_TYPE),
            ("specversion", "1.0"),
        ] {
            if ce.get(k).is_none_or(Value::is_null) {
                ce.insert(k.into(), s(v));
            }
        }
        ce
    } else {
        let md = input.metadata;
        let id = meta_override(md, "id")
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let source = meta_override(md, "source").unwrap_or(if input.app_id.is_empty() {
            DEFAULT_SOURCE
        } else {
            input.app_id
        });
        let event_type = meta_override(md, "type").unwrap_or(EVENT_TYPE);
        let traceid = meta_override(md, "traceparent")
            .or_else(|| meta_override(md, "traceid"))
            .unwrap_or(input.traceparent);
        let tracestate = meta_override(md, "tracestate").unwrap_or(input.tracestate);
        let mut ce = Map::new();
        ce.insert("id".into(), s(&id));
        ce.insert("specversion".into(), s("1.0"));
        ce.insert("datacontenttype".into(), s(content_type));
        ce.insert("source".into(), s(source));
        ce.insert("type".into(), s(event_type));
        ce.insert("topic".into(), s(input.topic));
        ce.insert("pubsubname".into(), s(input.pubsub));
        ce.insert("traceid".into(), s(traceid));
        ce.insert("traceparent".into(), s(traceid));
        ce.insert("tracestate".into(), s(tracestate));
        ce.insert("time".into(), s(&kit::time::rfc3339(now)));
        if is_content_type(content_type, "application/json") {
            // JSON that does not parse is sent as the text it is, as in Dapr.
            let data = serde_json::from_slice(input.data)
                .unwrap_or_else(|_| s(&String::from_utf8_lossy(input.data)));
            ce.insert("data".into(), data);
        } else if is_binary(content_type) {
            ce.insert(
                "data_base64".into(),
                s(&base64::engine::general_purpose::STANDARD.encode(input.data)),
            );
        } else {
            ce.insert("data".into(), s(&String::from_utf8_lossy(input.data)));
        }
        if let Some(subject) = meta_override(md, "subject") {
            ce.insert("subject".into(), s(subject));
        }
        ce
    };
    if !input.broker_has_ttl
        && let Some(ttl) = ttl(input.metadata)
    {
        let at = now.checked_add(ttl).unwrap_or(now);
        ce.insert("expiration".into(), s(&kit::time::rfc3339(at)));
    }
    Ok(ce)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: Duration = Duration::from_secs(1_700_000_000);
    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn build(
        data: &[u8],
        ct: Option<&str>,
        md: &[(&str, &str)],
    ) -> Result<Map<String, Value>, String> {
        let md: HashMap<String, String> = md
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        envelope(
            &EnvelopeInput {
                app_id: "checkout",
                pubsub: "pubsub",
                topic: "orders",
                data,
                content_type: ct,
                metadata: &md,
                traceparent: TP,
                tracestate: "",
                broker_has_ttl: false,
            },
            SystemTime::UNIX_EPOCH + NOW,
        )
    }

    #[test]
    fn json_bodies_become_data_with_daprs_fields() {
        let ce = build(br#"{"orderId": 1}"#, Some("application/json"), &[]).unwrap();
        assert_eq!(ce["data"], json!({"orderId": 1}));
        assert_eq!(ce["datacontenttype"], "application/json");
        assert_eq!(ce["source"], "checkout");
        assert_eq!(ce["type"], "com.dapr.event.sent");
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["topic"], "orders");
        assert_eq!(ce["pubsubname"], "pubsub");
        assert_eq!(ce["traceid"], TP);
        assert_eq!(ce["traceparent"], TP);
        assert_eq!(ce["tracestate"], "");
        assert_eq!(ce["time"], "2023-11-14T22:13:20Z");
        assert!(uuid::Uuid::parse_str(ce["id"].as_str().unwrap()).is_ok());
        assert!(!ce.contains_key("data_base64"));
        assert!(!ce.contains_key("expiration"));
        assert!(!ce.contains_key("subject"));
        let charset = build(b"[1]", Some("application/json; charset=utf-8"), &[]).unwrap();
        assert_eq!(charset["data"], json!([1]));
    }

    #[test]
    fn only_application_json_is_parsed_binary_is_base64_the_rest_text() {
        let text = build(b"hello", None, &[]).unwrap();
        assert_eq!(text["data"], "hello");
        assert_eq!(text["datacontenttype"], "text/plain");
        let bin = build(&[0, 159, 146], Some("application/octet-stream"), &[]).unwrap();
        assert_eq!(bin["data_base64"], "AJ+S");
        assert!(!bin.contains_key("data"));
        let broken = build(b"{nope", Some("application/json"), &[]).unwrap();
        assert_eq!(broken["data"], "{nope");
        let other_json = build(br#"{"a":1}"#, Some("application/problem+json"), &[]).unwrap();
        assert_eq!(
            other_json["data"], r#"{"a":1}"#,
            "Dapr parses application/json only"
        );
    }

    #[test]
    fn a_cloudevent_body_passes_with_defaults_and_routing_fields() {
        let body = br#"{"id": "mine", "source": "elsewhere", "data": {"a": 1}, "topic": "spoofed",
            "time": "2020-01-01T00:00:00Z", "traceid": "keep"}"#;
        let ce = build(
            body,
            Some("application/cloudevents+json"),
            &[("cloudevent.id", "no")],
        )
        .unwrap();
        assert_eq!(ce["id"], "mine", "no overrides for the caller's own event");
        assert_eq!(ce["source"], "elsewhere");
        assert_eq!(ce["type"], "com.dapr.event.sent");
        assert_eq!(ce["specversion"], "1.0");
        assert_eq!(ce["topic"], "orders", "Dapr sets the topic it publishes to");
        assert_eq!(ce["time"], "2020-01-01T00:00:00Z");
        assert_eq!(ce["traceid"], "keep");
        assert!(
            !ce.contains_key("traceparent"),
            "traceid present: trace fields left alone"
        );
        let bare = build(b"{}", Some("application/cloudevents+json"), &[]).unwrap();
        assert_eq!(bare["source"], "Dapr");
        assert_eq!(bare["traceparent"], TP);
        assert_eq!(bare["time"], "2023-11-14T22:13:20Z");
        assert!(build(b"not json", Some("application/cloudevents+json"), &[]).is_err());
        assert!(build(b"[1]", Some("application/cloudevents+json"), &[]).is_err());
    }

    #[test]
    fn metadata_overrides_and_ttl() {
        let ce = build(
            b"x",
            None,
            &[
                ("ttlInSeconds", "60"),
                ("CloudEvent.Id", "fixed"),
                ("cloudevent.type", "my.type"),
                ("cloudevent.source", "src"),
                ("cloudevent.subject", "subj"),
                ("cloudevent.traceparent", "tp"),
            ],
        )
        .unwrap();
        assert_eq!(ce["expiration"], "2023-11-14T22:14:20Z");
        assert_eq!(ce["id"], "fixed");
        assert_eq!(ce["type"], "my.type");
        assert_eq!(ce["source"], "src");
        assert_eq!(ce["subject"], "subj");
        assert_eq!(
            (&ce["traceid"], &ce["traceparent"]),
            (&json!("tp"), &json!("tp"))
        );
        let go = build(b"x", None, &[("ttl", "1m30s")]).unwrap();
        assert_eq!(go["expiration"], "2023-11-14T22:14:50Z");
        let zero = build(b"x", None, &[("ttlInSeconds", "0")]).unwrap();
        assert_eq!(
            zero["expiration"], "2023-11-14T22:13:20Z",
            "Go reads 0 as a duration"
        );
        for bad in ["soon", "-5"] {
            let ce = build(b"x", None, &[("ttlInSeconds", bad)]).unwrap();
            assert!(!ce.contains_key("expiration"), "{bad} is ignored");
        }
    }
}
