//! OTLP: spans as OpenTelemetry's protocol carries them, to a collector over gRPC
//! (`TraceService/Export`) or over HTTP (a protobuf body POSTed to `/v1/traces`), the two
//! `spec.tracing.otel.protocol`s Dapr knows.

use std::time::{Duration, SystemTime};

use prost::Message as _;
use proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use proto::otlp::resource::v1::Resource as OtlpResource;
use proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::client::Poster;
use super::{ExportError, Resource};
use crate::span::{FinishedSpan, SpanKind};

/// The instrumentation scope Dapr's spans carry.
pub const SCOPE: &str = "dapr-diagnostics";
/// The semantic conventions version of the attribute names.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.25.0";
/// The Go exporters' default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// OTLP span flags: the low byte is the W3C flags; this says the parent's remoteness is known.
const HAS_IS_REMOTE: u32 = 0x100;
/// ... and this that the parent is remote, as every parent of a sidecar's span is.
const IS_REMOTE: u32 = 0x200;

/// `endpointAddress` as a URL authority: Dapr takes `host:port`; a scheme written in front
/// anyway is dropped, as Dapr drops it from `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn authority(endpoint: &str) -> &str {
    endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

/// The OTLP gRPC exporter.
pub struct Grpc {
    client: TraceServiceClient<Channel>,
    headers: Vec<(
        MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
    timeout: Duration,
}

impl Grpc {
    /// Connects lazily, so a collector that is not up yet costs only failed exports.
    pub fn new(
        endpoint: &str,
        secure: bool,
        headers: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<Self, crate::TraceError> {
        let scheme = if secure { "https" } else { "http" };
        let url = format!("{scheme}://{}", authority(endpoint));
        let invalid = |reason: String| crate::TraceError::Endpoint {
            exporter: "otel",
            endpoint: endpoint.to_string(),
            reason,
        };
        let mut ep = Endpoint::from_shared(url)
            .map_err(|e| invalid(e.to_string()))?
            .tcp_nodelay(true);
        if secure {
            ep = ep
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| crate::TraceError::Tls(e.to_string()))?;
        }
        let headers = headers
            .iter()
            .filter_map(|(k, v)| {
                let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()).ok();
                let value = MetadataValue::try_from(v.as_str()).ok();
                if key.is_none() || value.is_none() {
                    tracing::warn!("otel exporter: header {k:?} cannot be sent; skipped");
                }
                Some((key?, value?))
            })
            .collect();
        Ok(Self {
            client: TraceServiceClient::new(ep.connect_lazy()),
            headers,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    pub(super) async fn export(
        &self,
        resource: &Resource,
        batch: &[FinishedSpan],
    ) -> Result<(), ExportError> {
        let mut req = tonic::Request::new(request(resource, batch));
        req.set_timeout(self.timeout);
        for (k, v) in &self.headers {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        let resp = self.client.clone().export(req).await?.into_inner();
        if let Some(partial) = resp.partial_success.filter(|p| p.rejected_spans > 0) {
            tracing::warn!(
                "the collector rejected {} span(s): {}",
                partial.rejected_spans,
                partial.error_message
            );
        }
        Ok(())
    }
}

/// The OTLP HTTP exporter (protobuf encoding).
pub struct Http {
    poster: Poster,
    timeout: Duration,
}

impl Http {
    pub fn new(
        endpoint: &str,
        secure: bool,
        headers: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<Self, crate::TraceError> {
        let scheme = if secure { "https" } else { "http" };
        let url = format!("{scheme}://{}/v1/traces", authority(endpoint));
        Ok(Self {
            poster: Poster::new("otel (http)", &url, headers)?,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    pub(super) async fn export(
        &self,
        resource: &Resource,
        batch: &[FinishedSpan],
    ) -> Result<(), ExportError> {
        let body = request(resource, batch).encode_to_vec();
        tokio::time::timeout(
            self.timeout,
            self.poster.post("application/x-protobuf", body),
        )
        .await
        .map_err(|_| ExportError::Timeout("otel (http)"))?
    }
}

fn string_value(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn kind(kind: SpanKind) -> span::SpanKind {
    match kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
        SpanKind::Consumer => span::SpanKind::Consumer,
    }
}

/// One export request: a resource with one scope holding the batch.
pub fn request(resource: &Resource, batch: &[FinishedSpan]) -> ExportTraceServiceRequest {
    let mut attributes = vec![string_value("service.name", &resource.service_name)];
    attributes.extend(
        resource
            .attributes
            .iter()
            .filter(|(k, _)| k != "service.name")
            .map(|(k, v)| string_value(k, v)),
    );
    let spans = batch.iter().map(otlp_span).collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(OtlpResource {
                attributes,
                dropped_attributes_count: 0,
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE.to_string(),
                    version: String::new(),
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: SCHEMA_URL.to_string(),
        }],
    }
}

fn otlp_span(s: &FinishedSpan) -> Span {
    let mut flags = u32::from(s.context.flags) | HAS_IS_REMOTE;
    if s.parent.is_some() {
        flags |= IS_REMOTE;
    }
    Span {
        trace_id: s.context.trace_id.to_vec(),
        span_id: s.context.span_id.to_vec(),
        trace_state: s.context.tracestate().unwrap_or_default().to_string(),
        parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: s.name.to_string(),
        kind: kind(s.kind) as i32,
        start_time_unix_nano: unix_nanos(s.start),
        end_time_unix_nano: unix_nanos(s.end),
        attributes: s
            .attributes
            .iter()
            .map(|(k, v)| string_value(k, v))
            .collect(),
        dropped_attributes_count: 0,
        status: s.error.as_ref().map(|message| Status {
            message: message.clone(),
            code: status::StatusCode::Error as i32,
        }),
        flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpanContext;

    #[test]
    fn a_span_becomes_an_otlp_span_under_its_resource() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let span = FinishedSpan {
            context: SpanContext {
                trace_id: [7; 16],
                span_id: [8; 8],
                flags: 1,
                trace_state: Some("a=b".into()),
            },
            parent: Some([9; 8]),
            name: "CallLocal/b/hello".into(),
            kind: SpanKind::Client,
            start,
            end: start + Duration::from_millis(3),
            attributes: vec![("dapr.protocol".into(), "http".into())],
            error: Some("Code(404): Not Found".into()),
        };
        let resource = Resource {
            service_name: "a".into(),
            attributes: vec![("deployment.environment".into(), "test".into())],
        };
        let req = request(&resource, &[span]);
        let rs = &req.resource_spans[0];
        let res = rs.resource.as_ref().expect("resource");
        assert_eq!(res.attributes[0], string_value("service.name", "a"));
        assert_eq!(
            res.attributes[1],
            string_value("deployment.environment", "test")
        );
        let scope = &rs.scope_spans[0];
        assert_eq!(scope.scope.as_ref().map(|s| s.name.as_str()), Some(SCOPE));
        let s = &scope.spans[0];
        assert_eq!(s.trace_id, vec![7; 16]);
        assert_eq!(s.parent_span_id, vec![9; 8]);
        assert_eq!(s.kind, span::SpanKind::Client as i32);
        assert_eq!(s.start_time_unix_nano, 10_000_000_000);
        assert_eq!(s.end_time_unix_nano, 10_003_000_000);
        assert_eq!(s.trace_state, "a=b");
        assert_eq!(s.flags, 0x301);
        assert_eq!(
            s.status.as_ref().map(|st| st.code),
            Some(status::StatusCode::Error as i32)
        );
        // The wire form decodes back to the same message.
        let bytes = req.encode_to_vec();
        assert_eq!(
            ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decodes"),
            req
        );
    }

    #[test]
    fn endpoints_are_authorities() {
        assert_eq!(authority("localhost:4317"), "localhost:4317");
        assert_eq!(authority("http://localhost:4318/"), "localhost:4318");
        assert_eq!(authority("https://otel.example:443"), "otel.example:443");
    }
}
