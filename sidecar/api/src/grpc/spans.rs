//! The gRPC servers' spans, as Dapr's tracing interceptors make them: one per call, a
//! child of the caller's `grpc-trace-bin` (or `traceparent`), named after the full
//! method; of kind client on the public API and server on the internal one (for proxied
//! calls: server when this sidecar's app is the callee). Handlers rename and tag the
//! span through [`trace::annotate_current`]; the answer carries the span's
//! `grpc-trace-bin`, except for `InvokeService` and proxied calls, as in Dapr. A span
//! ends with its answer's body, so a stream's span lasts as long as the stream.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::{HeaderMap, HeaderValue};
use trace::{GRPC_TRACE_BIN, SpanContext, SpanKind, TRACEPARENT, TRACESTATE, Tracer};

const INTERNAL_PREFIX: &str = "/dapr.proto.internals.";
const RUNTIME_PREFIX: &str = "/dapr.proto.runtime.";
const WORKFLOW_PREFIX: &str = "/TaskHubSidecarService";
const INVOKE_SERVICE: &str = "/dapr.proto.runtime.v1.Dapr/InvokeService";

/// The parent gRPC metadata names: `grpc-trace-bin` first, then `traceparent`.
pub fn parent_of(headers: &HeaderMap) -> Option<SpanContext> {
    if let Some(bin) = headers.get(GRPC_TRACE_BIN) {
        let text = bin.as_bytes();
        // gRPC peers send binary metadata padded or not.
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok()?;
        return SpanContext::from_binary(&bytes);
    }
    let tp = headers.get(TRACEPARENT)?.to_str().ok()?;
    let ts = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
    Some(SpanContext::from_traceparent(tp)?.with_trace_state(ts))
}

/// Sets the gRPC trace metadata for `ctx`: `grpc-trace-bin`, and `traceparent` and
/// `tracestate` for peers that only read the W3C form.
pub fn set_context_metadata(headers: &mut HeaderMap, ctx: &SpanContext) {
    if let Ok(v) = HeaderValue::try_from(STANDARD.encode(ctx.to_binary())) {
        headers.insert(GRPC_TRACE_BIN, v);
    }
    if let Ok(v) = HeaderValue::try_from(ctx.traceparent()) {
        headers.insert(TRACEPARENT, v);
    }
    if let Some(v) = ctx.tracestate().and_then(|s| HeaderValue::try_from(s).ok()) {
        headers.insert(TRACESTATE, v);
    }
}

/// Refuses a malformed `baggage` as Dapr does: `InvalidArgument` with the parser's reason.
pub fn check_baggage(md: &tonic::metadata::MetadataMap) -> Result<(), tonic::Status> {
    let lines = md
        .get_all(trace::baggage::BAGGAGE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    trace::baggage::joined(lines)
        .map(|_| ())
        .map_err(|e| tonic::Status::invalid_argument(format!("invalid baggage header: {e}")))
}

/// The request's `baggage` (lines joined) when it is well formed.
fn baggage_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let lines = headers
        .get_all(trace::baggage::BAGGAGE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let joined = trace::baggage::joined(lines).ok()??;
    HeaderValue::try_from(joined).ok()
}

/// How a call is traced, from its method and (for proxied calls) its target.
fn kind_of(method: &str, headers: &HeaderMap, app_id: &str) -> (SpanKind, bool) {
    if method.starts_with(INTERNAL_PREFIX) || method.starts_with(WORKFLOW_PREFIX) {
        return (SpanKind::Server, false);
    }
    if method.starts_with(RUNTIME_PREFIX) {
        return (SpanKind::Client, false);
    }
    let target = headers
        .get("dapr-callee-app-id")
        .or_else(|| headers.get("dapr-app-id"))
        .and_then(|v| v.to_str().ok());
    let kind = if target == Some(app_id) {
        SpanKind::Server
    } else {
        SpanKind::Client
    };
    (kind, true)
}

/// Wraps a gRPC server with the span of each call.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    tracer: Tracer,
    app_id: Arc<str>,
}

/// The layer that builds [`Traced`].
#[derive(Clone)]
pub struct TracedLayer {
    pub tracer: Tracer,
    pub app_id: Arc<str>,
}

impl<S> tower::Layer<S> for TracedLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            tracer: self.tracer.clone(),
            app_id: self.app_id.clone(),
        }
    }
}

/// A response body that carries its call's span: the span ends when the body does (the
/// last message of a stream, or the trailers of a unary call), and a failure reported in
/// the trailers marks it failed.
pub struct SpanBody<B> {
    inner: B,
    span: Option<trace::Span>,
}

impl<B> http_body::Body for SpanBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(span)) = (frame.trailers_ref(), &this.span) {
                    mark_failed(span, trailers);
                }
            }
            std::task::Poll::Ready(None | Some(Err(_))) => {
                this.span.take();
            }
            std::task::Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Marks `span` failed when `headers` (a trailers-only answer, or trailers) carry a
/// status other than OK, with the gRPC message as the description.
fn mark_failed(span: &trace::Span, headers: &HeaderMap) {
    if !span.is_recording() {
        return;
    }
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|s| s.to_str().ok())
        .filter(|s| *s != "0")
    else {
        return;
    };
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| kit::percent::decode_lossy(m).into_owned());
    span.annotate(|a| a.set_error(message.unwrap_or_else(|| format!("code {code}"))));
}

impl<S, B, RB> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: http_body::Body + Unpin,
{
    type Response = http::Response<SpanBody<RB>>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_string();
        let parent = parent_of(req.headers());
        let (kind, proxied) = kind_of(&method, req.headers(), &self.app_id);
        let span = self
            .tracer
            .start_span(kind, parent.as_ref(), || method.clone().into());
        let metadata: Vec<(String, String)> = if span.is_recording() {
            req.headers()
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("dapr-") && !k.as_str().ends_with("-bin"))
                .filter(|(k, _)| k.as_str() != "dapr-api-token")
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect()
        } else {
            Vec::new()
        };
        // A well-formed baggage goes back in the answer's headers, as Dapr sets it.
        let baggage = baggage_of(req.headers());
        let fut = span.scope(self.inner.call(req));
        Box::pin(async move {
            let mut resp = fut.await?;
            if span.is_recording() {
                span.annotate(|a| {
                    for (k, v) in metadata {
                        a.set(k, v);
                    }
                    a.set("dapr.protocol", "grpc");
                    a.set("dapr.api", method.clone());
                });
                mark_failed(&span, resp.headers());
            }
            if !proxied
                && method != INVOKE_SERVICE
                && let Ok(v) = HeaderValue::try_from(STANDARD.encode(span.context().to_binary()))
            {
                resp.headers_mut().insert(GRPC_TRACE_BIN, v);
            }
            if let Some(b) = baggage {
                resp.headers_mut().insert(trace::baggage::BAGGAGE, b);
            }
            Ok(resp.map(|inner| SpanBody {
                inner,
                span: Some(span),
            }))
        })
    }
}

/// The attributes Dapr gives a state call's span (`GetState`, `SaveState`, `DeleteState`).
pub fn annotate_state(method: &'static str, store: &str) {
    trace::annotate_current(|a| {
        a.set("db.name", store.to_string());
        a.set("rpc.service", "Dapr");
        a.set("db.system", "state");
        a.set("db.statement", method);
        a.set("db.connection_string", "state");
    });
}

/// The name and attributes Dapr gives an invocation's span, on the caller's side
/// (`InvokeService`) and the callee's (`CallLocal`).
pub fn annotate_invoke(app_id: &str, method: &str, caller_side: bool) {
    trace::annotate_current(|a| {
        a.set("rpc.service", "ServiceInvocation");
        if caller_side {
            a.set("net.peer.name", app_id.to_string());
        } else {
            a.set("dapr.invoke_method", method.to_string());
        }
        a.set_name(format!("CallLocal/{app_id}/{method}"));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_context_wins_and_round_trips() {
        let ctx = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .expect("valid");
        let mut headers = HeaderMap::new();
        set_context_metadata(&mut headers, &ctx);
        assert_eq!(parent_of(&headers), Some(ctx.clone()));
        headers.remove(GRPC_TRACE_BIN);
        assert_eq!(parent_of(&headers), Some(ctx.clone()));
        // Unpadded base64, as some gRPC stacks send binary metadata.
        let mut unpadded = HeaderMap::new();
        unpadded.insert(
            GRPC_TRACE_BIN,
            HeaderValue::try_from(STANDARD_NO_PAD.encode(ctx.to_binary())).expect("ascii"),
        );
        assert_eq!(parent_of(&unpadded), Some(ctx));
    }

    #[test]
    fn span_kinds_follow_dapr() {
        let none = HeaderMap::new();
        assert_eq!(
            kind_of(
                "/dapr.proto.internals.v1.ServiceInvocation/CallLocal",
                &none,
                "a"
            ),
            (SpanKind::Server, false)
        );
        assert_eq!(
            kind_of("/dapr.proto.runtime.v1.Dapr/GetState", &none, "a"),
            (SpanKind::Client, false)
        );
        let mut to_us = HeaderMap::new();
        to_us.insert("dapr-app-id", HeaderValue::from_static("a"));
        assert_eq!(kind_of("/x.Svc/M", &to_us, "a"), (SpanKind::Server, true));
        assert_eq!(kind_of("/x.Svc/M", &to_us, "b"), (SpanKind::Client, true));
    }
}
