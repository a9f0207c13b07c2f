//! Distributed tracing the way Dapr's sidecar does it: W3C trace context in and out
//! (`traceparent`, `tracestate`, `grpc-trace-bin`), a parent-based ratio sampler from
//! `spec.tracing.samplingRate`, spans named and tagged by the front doors, and their
//! export to what `spec.tracing` names (OTLP over gRPC or HTTP, Zipkin, stdout).
//!
//! It knows nothing of the sidecar's APIs: the front doors start and end spans, handlers
//! annotate the current one, and the app channel and the peer client read the current
//! context to pass it on. A span that is not sampled records nothing, so tracing costs a
//! context per call when nobody is looking.

pub mod baggage;
pub mod context;
pub mod export;
pub mod sampler;
pub mod span;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use context::{GRPC_TRACE_BIN, SpanContext, TRACEPARENT, TRACESTATE};
pub use export::{Batching, Resource};
pub use sampler::{Sampler, parse_rate};
pub use span::{Annotations, FinishedSpan, Span, SpanKind, annotate_current, current_context};

/// Why the configured tracing could not be set up; the sidecar then refuses to start, as
/// Dapr's does.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("invalid protocol {0} provided for Otel endpoint")]
    Protocol(String),
    #[error("{exporter} endpoint {endpoint:?}: {reason}")]
    Endpoint {
        exporter: &'static str,
        endpoint: String,
        reason: String,
    },
    #[error("TLS roots for the trace exporter: {0}")]
    Tls(String),
}

/// `spec.tracing.otel.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtelProtocol {
    Grpc,
    Http,
}

impl std::str::FromStr for OtelProtocol {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s {
            "grpc" => Ok(Self::Grpc),
            "http" => Ok(Self::Http),
            other => Err(TraceError::Protocol(other.to_string())),
        }
    }
}

/// The OTLP exporter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otel {
    pub protocol: OtelProtocol,
    /// `host:port` of the collector.
    pub endpoint: String,
    /// TLS towards the collector (Dapr's default).
    pub secure: bool,
    /// Sent with every export (collector API keys and the like).
    pub headers: Vec<(String, String)>,
    pub timeout: Option<Duration>,
}

/// What `spec.tracing` (and the `OTEL_*` environment) ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub resource: Resource,
    /// The fraction of new traces sampled.
    pub sampling_rate: f64,
    pub stdout: bool,
    /// Zipkin collector URL.
    pub zipkin: Option<String>,
    pub otel: Option<Otel>,
    pub batching: Batching,
}

impl Settings {
    /// No exporter, Dapr's default rate: contexts are made and passed on, nothing is sent.
    pub fn without_exporters(service_name: &str) -> Self {
        Self {
            resource: Resource {
                service_name: service_name.to_string(),
                attributes: Vec::new(),
            },
            sampling_rate: sampler::DEFAULT_RATE,
            stdout: false,
            zipkin: None,
            otel: None,
            batching: Batching::default(),
        }
    }
}

/// Starts spans. Cheap to clone; every clone shares the export queue.
#[derive(Clone, Debug)]
pub struct Tracer(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sampler: Sampler,
    /// The export queue; without exporters no span is recorded at all.
    sink: Option<mpsc::Sender<export::Message>>,
}

impl Tracer {
    /// Builds the exporters `settings` name and starts the batching task (so it must be
    /// called inside a Tokio runtime).
    pub fn start(settings: Settings) -> Result<Self, TraceError> {
        let mut exporters = Vec::new();
        if settings.stdout {
            exporters.push(export::Exporter::Stdout);
        }
        if let Some(url) = settings.zipkin.as_deref().filter(|u| !u.is_empty()) {
            exporters.push(export::Exporter::Zipkin(export::zipkin::Zipkin::new(url)?));
        }
        if let Some(otel) = &settings.otel {
            exporters.push(match otel.protocol {
                OtelProtocol::Grpc => export::Exporter::OtlpGrpc(export::otlp::Grpc::new(
                    &otel.endpoint,
                    otel.secure,
                    &otel.headers,
                    otel.timeout,
                )?),
                OtelProtocol::Http => export::Exporter::OtlpHttp(export::otlp::Http::new(
                    &otel.endpoint,
                    otel.secure,
                    &otel.headers,
                    otel.timeout,
                )?),
            });
        }
        let sink = (!exporters.is_empty())
            .then(|| export::spawn(exporters, settings.resource, settings.batching));
        Ok(Self(Arc::new(Inner {
            sampler: Sampler::ratio(settings.sampling_rate),
            sink,
        })))
    }

    /// A tracer that exports nothing: contexts are still made and passed on.
    pub fn without_exporters() -> Self {
        Self(Arc::new(Inner {
            sampler: Sampler::ratio(sampler::DEFAULT_RATE),
            sink: None,
        }))
    }

    /// Starts a span, as a child of `parent` when there is a valid one (the trace goes
    /// on), else as the root of a new trace. `name` is only called for a span that
    /// records, so an unsampled call allocates no name.
    pub fn start_span(
        &self,
        kind: SpanKind,
        parent: Option<&SpanContext>,
        name: impl FnOnce() -> Cow<'static, str>,
    ) -> Span {
        let parent = parent.filter(|p| p.is_valid());
        let trace_id = match parent {
            Some(p) => p.trace_id,
            None => new_id(),
        };
        let sampled = self.0.sampler.sample(parent, &trace_id);
        let context = SpanContext {
            trace_id,
            span_id: new_id(),
            flags: (parent.map_or(0, |p| p.flags) & !1) | u8::from(sampled),
            trace_state: parent.and_then(|p| p.trace_state.clone()),
        };
        let record =
            (sampled && self.0.sink.is_some()).then(|| (name(), kind, parent.map(|p| p.span_id)));
        Span::new(context, record, self.0.sink.clone())
    }

    /// Exports every span ended so far; for shutdown, so the last calls are not lost.
    pub async fn flush(&self) {
        let Some(sink) = &self.0.sink else {
            return;
        };
        let (tx, rx) = oneshot::channel();
        if sink.send(export::Message::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A random id of `N` bytes that is not all zeros.
fn new_id<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    loop {
        fastrand::fill(&mut id);
        if id.iter().any(|b| *b != 0) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: f64) -> Settings {
        Settings {
            sampling_rate: rate,
            stdout: true,
            batching: Batching {
                schedule_delay: Duration::from_millis(10),
                ..Batching::default()
            },
            ..Settings::without_exporters("app")
        }
    }

    #[tokio::test]
    async fn a_child_continues_its_parents_trace() {
        let tracer = Tracer::start(settings(1.0)).expect("tracer");
        let parent = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .expect("valid")
        .with_trace_state(Some("k=v"));
        let span = tracer.start_span(SpanKind::Client, Some(&parent), || "x".into());
        assert_eq!(span.context().trace_id, parent.trace_id);
        assert_ne!(span.context().span_id, parent.span_id);
        assert!(span.context().is_sampled());
        assert!(span.is_recording());
        assert_eq!(span.context().tracestate(), Some("k=v"));
        tracer.flush().await;
    }

    #[tokio::test]
    async fn an_unsampled_parent_is_followed_and_nothing_recorded() {
        let tracer = Tracer::start(settings(1.0)).expect("tracer");
        let parent = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )
        .expect("valid");
        let span = tracer.start_span(SpanKind::Server, Some(&parent), || "x".into());
        assert!(!span.context().is_sampled());
        assert!(!span.is_recording());
    }

    #[tokio::test]
    async fn without_exporters_contexts_are_made_but_nothing_recorded() {
        let tracer = Tracer::start(Settings {
            sampling_rate: 1.0,
            ..Settings::without_exporters("app")
        })
        .expect("tracer");
        let span = tracer.start_span(SpanKind::Client, None, || "x".into());
        assert!(span.context().is_valid());
        assert!(span.context().is_sampled());
        assert!(!span.is_recording());
    }

    #[tokio::test]
    async fn the_current_span_is_seen_inside_its_scope_only() {
        let tracer = Tracer::start(settings(1.0)).expect("tracer");
        let span = tracer.start_span(SpanKind::Client, None, || "x".into());
        let expected = span.context().clone();
        assert_eq!(current_context(), None);
        let seen = span
            .scope(async {
                annotate_current(|a| a.set("k", "v"));
                current_context()
            })
            .await;
        assert_eq!(seen, Some(expected));
        assert_eq!(current_context(), None);
    }

    #[test]
    fn only_dapr_protocols_are_accepted() {
        assert_eq!(
            "grpc".parse::<OtelProtocol>().ok(),
            Some(OtelProtocol::Grpc)
        );
        assert_eq!(
            "http".parse::<OtelProtocol>().ok(),
            Some(OtelProtocol::Http)
        );
        let err = "zipkin".parse::<OtelProtocol>().expect_err("refused");
        assert_eq!(
            err.to_string(),
            "invalid protocol zipkin provided for Otel endpoint"
        );
    }
}
