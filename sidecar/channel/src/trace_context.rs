//! The trace context each outbound call carries, as Dapr passes it on: to another
//! sidecar, the current span's context as gRPC metadata (`grpc-trace-bin` and
//! `traceparent`); to the app, the caller's own `traceparent` when the call came with
//! one, and otherwise the context of the span this sidecar serves the call under.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::{HeaderMap, HeaderValue};
use tonic::metadata::{MetadataMap, MetadataValue};
use trace::{GRPC_TRACE_BIN, SpanContext, TRACEPARENT, TRACESTATE};

/// The caller's context among the call's headers: `traceparent` (with `tracestate`), or
/// the binary form a gRPC caller may have sent instead.
fn callers(headers: &HeaderMap) -> Option<SpanContext> {
    if let Some(tp) = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()) {
        let ts = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
        return Some(SpanContext::from_traceparent(tp)?.with_trace_state(ts));
    }
    let bin = headers.get(GRPC_TRACE_BIN)?.as_bytes();
    let bytes = STANDARD
        .decode(bin)
        .or_else(|_| STANDARD_NO_PAD.decode(bin))
        .ok()?;
    SpanContext::from_binary(&bytes)
}

fn set_w3c(headers: &mut HeaderMap, ctx: &SpanContext) {
    if let Ok(v) = HeaderValue::try_from(ctx.traceparent()) {
        headers.insert(TRACEPARENT, v);
    }
    if let Some(v) = ctx.tracestate().and_then(|s| HeaderValue::try_from(s).ok()) {
        headers.insert(TRACESTATE, v);
    }
}

/// Headers to an HTTP app (or endpoint): a caller's `traceparent` goes on as it came;
/// without one the app gets the current span's.
pub fn to_http_app(headers: &mut HeaderMap) {
    if headers.contains_key(TRACEPARENT) {
        return;
    }
    let ctx = callers(headers).or_else(trace::current_context);
    headers.remove(GRPC_TRACE_BIN);
    if let Some(ctx) = ctx {
        set_w3c(headers, &ctx);
    }
}

/// Metadata to a gRPC app: the caller's context or the current span's, in both forms.
pub fn to_grpc_app(md: &mut MetadataMap, headers: &HeaderMap) {
    if let Some(ctx) = callers(headers).or_else(trace::current_context) {
        set_metadata(md, &ctx);
    }
}

/// Metadata to another sidecar: the current span's context, so the callee's span is its
/// child.
pub fn to_peer(md: &mut MetadataMap) {
    if let Some(ctx) = trace::current_context() {
        set_metadata(md, &ctx);
    }
}

fn set_metadata(md: &mut MetadataMap, ctx: &SpanContext) {
    md.insert_bin(GRPC_TRACE_BIN, MetadataValue::from_bytes(&ctx.to_binary()));
    if let Ok(v) = ctx.traceparent().parse() {
        md.insert(TRACEPARENT, v);
    }
    if let Some(v) = ctx.tracestate().and_then(|s| s.parse().ok()) {
        md.insert(TRACESTATE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_callers_traceparent_reaches_the_http_app_as_it_came() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(TP));
        to_http_app(&mut headers);
        assert_eq!(
            headers.get(TRACEPARENT).map(|v| v.as_bytes()),
            Some(TP.as_bytes())
        );
    }

    #[test]
    fn a_binary_context_becomes_a_traceparent_for_http_apps() {
        let ctx = SpanContext::from_traceparent(TP).expect("valid");
        let mut headers = HeaderMap::new();
        headers.insert(
            GRPC_TRACE_BIN,
            HeaderValue::try_from(STANDARD.encode(ctx.to_binary())).expect("ascii"),
        );
        to_http_app(&mut headers);
        assert_eq!(
            headers.get(TRACEPARENT).map(|v| v.as_bytes()),
            Some(TP.as_bytes())
        );
        assert!(!headers.contains_key(GRPC_TRACE_BIN));
    }

    #[test]
    fn grpc_apps_get_both_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(TP));
        let mut md = MetadataMap::new();
        to_grpc_app(&mut md, &headers);
        let ctx = SpanContext::from_traceparent(TP).expect("valid");
        assert_eq!(
            md.get_bin(GRPC_TRACE_BIN)
                .and_then(|v| v.to_bytes().ok())
                .as_deref(),
            Some(&ctx.to_binary()[..])
        );
        assert_eq!(md.get(TRACEPARENT).and_then(|v| v.to_str().ok()), Some(TP));
    }

    #[test]
    fn without_a_current_span_nothing_is_added() {
        let mut headers = HeaderMap::new();
        to_http_app(&mut headers);
        assert!(headers.is_empty());
        let mut md = MetadataMap::new();
        to_peer(&mut md);
        assert!(md.is_empty());
    }
}
