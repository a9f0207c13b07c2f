//! Zipkin: spans as Zipkin's v2 JSON model, POSTed to `spec.tracing.zipkin.endpointAddress`
//! (a full URL such as `http://zipkin:9411/api/v2/spans`), tagged the way OpenTelemetry's
//! Zipkin exporter tags them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::client::Poster;
use super::{ExportError, Resource};
use crate::context::hex;
use crate::span::{FinishedSpan, SpanKind};

pub struct Zipkin {
    poster: Poster,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ZipkinSpan<'a> {
    trace_id: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    timestamp: u64,
    duration: u64,
    local_endpoint: Endpoint<'a>,
    tags: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Endpoint<'a> {
    service_name: &'a str,
}

impl Zipkin {
    pub fn new(url: &str) -> Result<Self, crate::TraceError> {
        Ok(Self {
            poster: Poster::new("zipkin", url, &[])?,
        })
    }

    pub(super) async fn export(
        &self,
        resource: &Resource,
        batch: &[FinishedSpan],
    ) -> Result<(), ExportError> {
        let spans: Vec<ZipkinSpan<'_>> = batch.iter().map(|s| model(resource, s)).collect();
        let body = serde_json::to_vec(&spans).map_err(|e| ExportError::Http {
            exporter: "zipkin",
            reason: e.to_string(),
        })?;
        self.poster.post("application/json", body).await
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One span in Zipkin's model. Zipkin has no internal kind: such spans go without one.
pub fn model<'a>(resource: &'a Resource, s: &'a FinishedSpan) -> ZipkinSpan<'a> {
    let kind = match s.kind {
        SpanKind::Server => Some("SERVER"),
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Internal => None,
    };
    let mut tags: BTreeMap<&str, &str> = s
        .attributes
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_str()))
        .collect();
    tags.insert("otel.scope.name", super::otlp::SCOPE);
    if let Some(description) = &s.error {
        tags.insert("otel.status_code", "Error");
        tags.insert("error", description);
    }
    let start = micros(s.start);
    ZipkinSpan {
        trace_id: hex(&s.context.trace_id),
        id: hex(&s.context.span_id),
        parent_id: s.parent.map(|p| hex(&p)),
        name: &s.name,
        kind,
        timestamp: start,
        duration: micros(s.end).saturating_sub(start).max(1),
        local_endpoint: Endpoint {
            service_name: &resource.service_name,
        },
        tags,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::SpanContext;

    #[test]
    fn a_span_in_zipkins_json() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(2);
        let span = FinishedSpan {
            context: SpanContext {
                trace_id: [0xab; 16],
                span_id: [0x01; 8],
                flags: 1,
                trace_state: None,
            },
            parent: None,
            name: "/v1.0/state/store".into(),
            kind: SpanKind::Client,
            start,
            end: start + Duration::from_micros(1500),
            attributes: vec![("db.system".into(), "state".into())],
            error: Some("Code(500): Internal Server Error".into()),
        };
        let resource = Resource {
            service_name: "app".into(),
            attributes: Vec::new(),
        };
        let json = serde_json::to_value(model(&resource, &span)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "traceId": "abababababababababababababababab",
                "id": "0101010101010101",
                "name": "/v1.0/state/store",
                "kind": "CLIENT",
                "timestamp": 2_000_000,
                "duration": 1500,
                "localEndpoint": {"serviceName": "app"},
                "tags": {
                    "db.system": "state",
                    "error": "Code(500): Internal Server Error",
                    "otel.scope.name": "dapr-diagnostics",
                    "otel.status_code": "Error",
                },
            })
        );
    }
}
